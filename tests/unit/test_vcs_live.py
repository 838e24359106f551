"""``vcs://``: the main.cf VCS keeps and the state its commands print, through a runner."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.conftest import FIXTURES

from haprotect.errors import ComponentError, UsageError
from haprotect.model.topology import Role
from haprotect.sources.base import DiscoverOptions
from haprotect.sources.vcs.cli_tools import run_command
from haprotect.sources.vcs.source import VcsSource

HASTATUS = (FIXTURES / "vcs" / "erp" / "main.cf.hastatus").read_text()
HAGRP = """\
#Group       Attribute             System           Value
erp_db       State                 erp1             |OFFLINE|
erp_db       State                 erp2             |ONLINE|
"""
HARES = """\
#Resource     Attribute             System           Value
ora_rvg_pri   State                 erp2             ONLINE
"""


class SavedOutputs:
    """Answers each command with a saved output and records what was asked."""

    def __init__(self, outputs: dict[tuple[str, ...], str]) -> None:
        self.outputs = outputs
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> str:
        self.asked.append(tuple(argv))
        if tuple(argv) not in self.outputs:
            raise ComponentError(f"{' '.join(argv)} exited with status 1: not saved")
        return self.outputs[tuple(argv)]


@pytest.fixture
def vcs_conf(tmp_path: Path) -> Path:
    config = tmp_path / "conf" / "config"
    config.mkdir(parents=True)
    for name in ("main.cf", "types.cf", "vvrtypes.cf"):
        shutil.copy(FIXTURES / "vcs" / "erp" / name, config / name)
    return tmp_path


def test_live_discovery_reads_main_cf_and_asks_the_three_commands(vcs_conf: Path) -> None:
    runner = SavedOutputs({("hastatus", "-sum"): HASTATUS, ("hagrp", "-state"): HAGRP,
                           ("hares", "-state"): HARES})  # fmt: skip
    source = VcsSource(runner=runner, vcs_conf=vcs_conf)
    (cluster,) = source.discover("vcs://", DiscoverOptions()).clusters
    assert runner.asked == [("hastatus", "-sum"), ("hagrp", "-state"), ("hares", "-state")]
    # hagrp -state, read after hastatus -sum, moved erp_db to erp2
    placement = {r.id: r.placement for r in cluster.resources}
    assert placement["ora_db"] == {"erp2": Role.STARTED}
    assert cluster.dataset("ora_rvg").primary == "erp2"


def test_a_failing_command_is_one_component_error(vcs_conf: Path) -> None:
    runner = SavedOutputs({("hastatus", "-sum"): HASTATUS})
    source = VcsSource(runner=runner, vcs_conf=vcs_conf)
    with pytest.raises(ComponentError, match=r"^hagrp -state exited with status 1: not saved$"):
        source.discover("vcs://", DiscoverOptions())


def test_no_cli_refuses_the_live_url(vcs_conf: Path) -> None:
    with pytest.raises(UsageError, match="vcs\\+file://"):
        VcsSource(vcs_conf=vcs_conf).discover("vcs://", DiscoverOptions(use_cli=False))


def test_the_default_runner_says_when_vcs_is_not_installed() -> None:
    if shutil.which("hastatus") or Path("/opt/VRTSvcs/bin/hastatus").exists():
        pytest.skip("VCS is installed here")
    with pytest.raises(ComponentError, match=r"^hastatus is not installed$"):
        run_command(["hastatus", "-sum"], 5.0)


def test_the_default_runner_reports_exit_status_and_stderr(tmp_path: Path) -> None:
    script = tmp_path / "hagrp"
    script.write_text("#!/bin/sh\necho 'VCS ERROR V-16-1-10600 Cannot connect' >&2\nexit 1\n")
    script.chmod(0o755)
    tool = str(script)
    with pytest.raises(ComponentError) as caught:
        run_command([tool, "-state"], 5.0)
    assert caught.value.message == (
        f"{tool} -state exited with status 1: VCS ERROR V-16-1-10600 Cannot connect"
    )
