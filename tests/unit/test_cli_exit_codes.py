"""What the run commands' help says about exit status is what they exit with."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.model.result import Status


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_help_gives_the_exit_codes_runs_end_with(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    partial, failed = Status.PARTIALLY_FAILED.exit_code, Status.FAILED.exit_code
    assert f"0 completed, {partial} partially failed, {failed} failed" in text
