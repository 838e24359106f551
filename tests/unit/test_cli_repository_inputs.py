"""A repository URL or an inventory given on the command line is checked before anything else.

A URL given as an argument, ``--repo`` or ``$HAPROTECT_REPOSITORY`` is
checked as a policy's ``where`` is (a known scheme; a directory, not a
device, FIFO, socket or file): one line, exit 2, and nothing is written
there. ``restore`` reads its inventory before it opens the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.web_site import write_web_site
from typer.testing import CliRunner

from haprotect.cli.main import app

ENV = {"HAPROTECT_PASSWORD": "pw", "HAPROTECT_REPOSITORY": None}


def run(args: list[str], code: int, env: dict[str, str | None] | None = None) -> str:
    result = CliRunner().invoke(app, args, env={**ENV, **(env or {})})
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.stderr


def targets(tmp: Path) -> dict[str, tuple[str, str]]:
    """Repository URLs that are no directory, each with what the error says it is."""
    regular = tmp / "a-file"
    regular.write_bytes(b"keep")
    fifo = tmp / "a-fifo"
    os.mkfifo(fifo)
    link = tmp / "a-link"
    link.symlink_to(regular)
    return {
        "device": ("/dev/null", "/dev/null is under /dev, not a directory to write to"),
        "device URL": ("file:///dev/null", "/dev/null is under /dev, not a directory to write to"),
        "file": (str(regular), f"{regular} is a file, not a directory"),
        "FIFO": (f"file://{fifo}", f"{fifo} is a FIFO, not a directory"),
        "link to a file": (str(link), f"{regular} is a file, not a directory"),
        "unknown scheme": ("ftp://host/repo", "unknown scheme ftp://"),
    }


REPO_COMMANDS = [
    ["repo", "init"],
    ["repo", "backup", "{url}", "/etc/hostname"],
    ["repo", "snapshots"],
    ["repo", "restore", "{url}", "latest", "--target", "{tmp}/out"],
    ["repo", "forget", "{url}", "--keep-last", "1"],
    ["repo", "prune"],
    ["repo", "check"],
    ["repo", "stats"],
    ["repo", "unlock"],
    ["snapshots", "--repo"],
    ["restore", "latest", "--yes", "--repo"],
]


def _args(command: list[str], url: str, tmp: Path) -> list[str]:
    args = [a.replace("{url}", url).replace("{tmp}", str(tmp)) for a in command]
    return args if "{url}" in command else [*args, url]


@pytest.mark.parametrize("command", REPO_COMMANDS, ids=" ".join)
def test_a_repository_that_is_no_directory_is_refused_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    for url, says in targets(tmp_path).values():
        stderr = run(_args(command, url, tmp_path), 2)
        assert stderr.splitlines()[0].startswith(f"haprotect: error: repository {url!r}: ")
        assert says in stderr.splitlines()[0]
    assert (tmp_path / "a-file").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-fifo", "a-file", "a-link"]


def test_the_repository_from_the_environment_is_checked(tmp_path: Path) -> None:
    regular = tmp_path / "a-file"
    regular.write_bytes(b"keep")
    for command in (["snapshots"], ["restore", "latest", "--yes"]):
        stderr = run(command, 2, {"HAPROTECT_REPOSITORY": str(regular)})
        assert f"{regular} is a file, not a directory" in stderr.splitlines()[0]


def _policy(tmp: Path) -> Path:
    topology, rules = write_web_site(tmp)
    policy = tmp / "policy.yaml"
    run(["plan", f"file://{topology}", "--rules", str(rules), "-o", str(policy)], 0)
    return policy


def test_backup_to_a_repository_that_is_no_directory_writes_nothing(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    regular = tmp_path / "a-file"
    regular.write_bytes(b"keep")
    for url in ("/dev/null", str(regular)):
        stderr = run(["backup", str(policy), "--init", "--repo", url], 2)
        assert stderr.startswith(f"haprotect: error: repository {url!r}: ")
    assert regular.read_bytes() == b"keep"
    assert not (tmp_path / "staging").exists() and not (tmp_path / "repo").exists()


def test_repo_init_makes_a_directory_that_does_not_exist_yet(tmp_path: Path) -> None:
    where = tmp_path / "new" / "repo"
    run(["repo", "init", str(where)], 0)
    run(["repo", "check", f"file://{where}"], 0)
    run(["snapshots", "--repo", str(where)], 0)


def test_restore_reads_its_inventory_before_it_opens_the_repository(tmp_path: Path) -> None:
    """A bad inventory is reported first, not after the passphrase (here a wrong one)."""
    policy = _policy(tmp_path)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("nodes:\n  web1: {local: true}\n")
    repo = f"file://{tmp_path}/repo"
    run(["backup", str(policy), "--init", "--inventory", str(inventory)], 0)
    bad = tmp_path / "bad-inventory.yaml"
    bad.write_text("nodes:\n  web1:\n    local: maybe\n")
    restore = ["restore", "latest", "--repo", repo, "--to", str(tmp_path / "out"), "--yes"]
    stderr = run([*restore, "--inventory", str(bad)], 3, {"HAPROTECT_PASSWORD": "wrong"})
    assert stderr.startswith(f"haprotect: error: {bad}:3: ")
    assert not (tmp_path / "out").exists()
    run([*restore, "--inventory", str(inventory)], 7, {"HAPROTECT_PASSWORD": "wrong"})
