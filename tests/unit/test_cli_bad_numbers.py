"""An integer no input can mean is one line naming file and line, exit 3, in every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.web_site import web_topology
from typer.testing import CliRunner

from haprotect.cli.main import app

HUGE = "9" * 5000


class Files:
    """A topology, its policy, rules and inventory; the ``bad_*`` ones hold a huge integer."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        uploads = tmp / "uploads"
        uploads.mkdir()
        (uploads / "a.txt").write_text("a")
        self.topology = self._write("web.yaml", web_topology(uploads, ", port: 80"))
        self.bad_topology = self._write("bad-web.yaml", web_topology(uploads, f", port: {HUGE}"))
        self.rules = self._write("rules.yaml", f"where: file://{tmp}/repo\n")
        self.bad_rules = self._write("bad-rules.yaml", f"ha:\n  copies: {HUGE}\n")
        self.inventory = self._write("inventory.yaml", "nodes:\n  web1: {local: true}\n")
        self.bad_inventory = self._write(
            "bad-inventory.yaml",
            f"nodes:\n  web1:\n    local: true\n    locations:\n      uploads: {{port: {HUGE}}}\n",
        )
        self.policy = tmp / "policy.yaml"
        run(["plan", f"file://{self.topology}", "--rules", str(self.rules), "-o", str(self.policy)])
        text = self.policy.read_text()
        self.bad_policy = self._write(
            "bad-policy.yaml", text.replace("copies: 2", f"copies: {HUGE}")
        )
        self.drifting = self._write(
            "drifting.yaml", text.replace(str(self.topology), str(self.bad_topology))
        )

    def _write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path


ENV = {"HAPROTECT_PASSWORD": "pw"}


def run(args: list[str], code: int = 0) -> str:
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == code, result.output
    return result.stderr


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def assert_one_line_at(stderr: str, path: Path, line: int) -> None:
    assert "Traceback" not in stderr
    (message,) = stderr.splitlines()
    assert re.fullmatch(
        rf"haprotect: error: {re.escape(str(path))}:{line}: [\w.\[\]]+: "
        r"integer out of range \(\d+ digits\): integers have 64 bits, up to 9223372036854775807 "
        r"\(quote a value meant as text\)",
        message,
    ), message


def test_a_huge_integer_in_a_topology_file(files: Files) -> None:
    url = f"file://{files.bad_topology}"
    for args in (["discover", url], ["discover", url, "--json"], ["plan", url]):
        assert_one_line_at(run(args, 3), files.bad_topology, 9)
    assert_one_line_at(run(["drift", str(files.drifting)], 3), files.bad_topology, 9)


def test_a_huge_integer_in_a_rules_file(files: Files) -> None:
    url = f"file://{files.topology}"
    assert_one_line_at(run(["plan", url, "--rules", str(files.bad_rules)], 3), files.bad_rules, 2)
    assert_one_line_at(run(["rules", str(files.bad_rules)], 3), files.bad_rules, 2)


def test_a_huge_integer_in_a_policy(files: Files) -> None:
    bad, good = str(files.bad_policy), str(files.policy)
    line = next(n for n, t in enumerate(files.bad_policy.read_text().splitlines(), 1) if HUGE in t)
    for args in (
        ["validate", bad],
        ["explain", bad],
        ["diff", good, bad],
        ["drift", bad],
        ["backup", bad, "--dry-run"],
        ["backup", bad, "--init"],
    ):
        assert_one_line_at(run(args, 3), files.bad_policy, line)


def test_a_huge_integer_in_an_inventory(files: Files) -> None:
    inventory = ["--inventory", str(files.bad_inventory)]
    assert_one_line_at(
        run(["backup", str(files.policy), "--dry-run", *inventory], 3), files.bad_inventory, 5
    )
    run(["backup", str(files.policy), "--init", "--inventory", str(files.inventory)])
    repo = ["--repo", f"file://{files.tmp}/repo"]
    restore = ["restore", "latest", *repo, "--to", str(files.tmp / "out"), "--yes", *inventory]
    assert_one_line_at(run(restore, 3), files.bad_inventory, 5)
