"""``haprotect repo``: passphrase sources, one-line errors, JSON lines, help texts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.repo import KdfParams, Repository
from haprotect.repo.backup.dispatch import SMALL_BATCH_FILES
from haprotect.repo.backup.options import READERS_AFTER_BATCHES
from haprotect.repo.lock import Locker
from haprotect.repo.process.forkpool import PooledProcess
from haprotect.storage.local import LocalStore

runner = CliRunner()


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    Repository.init(LocalStore(path), "secret", kdf=KdfParams(n=1 << 10))
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "src"
    path.mkdir()
    (path / "a.txt").write_text("alpha\n" * 100)
    (path / "b.bin").write_bytes(os.urandom(50_000))
    return path


def invoke(*args: str, password: str | None = "secret") -> Any:
    env = {"HAPROTECT_PASSWORD": password} if password is not None else {}
    return runner.invoke(app, ["repo", *args], env=env, catch_exceptions=False)


def one_line_error(result: Any, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.splitlines() if not ln.startswith("hint: ")]
    assert len(lines) == 1 and lines[0].startswith("haprotect: error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def json_lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_backup_json_is_progress_lines_then_a_summary(repo_dir: Path, src: Path) -> None:
    result = invoke("backup", str(repo_dir), str(src), "--tag", "t1", "--meta", "app=x", "--json")
    assert result.exit_code == 0, result.output
    lines = json_lines(result)
    assert all(line["type"] == "progress" for line in lines[:-1])
    assert lines[-2]["finished"] is True and lines[-2]["phase"] == "backup"
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["command"] == "backup"
    assert summary["snapshot"]["tags"] == ["t1"] and summary["snapshot"]["metadata"] == {"app": "x"}
    listed = json_lines(invoke("snapshots", str(repo_dir), "--json"))[-1]
    assert [s["id"] for s in listed["snapshots"]] == [summary["snapshot"]["id"]]


@pytest.mark.parametrize("readers", [0, 1])
def test_backup_readers_is_how_many_processes_read_small_files(
    repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readers: int
) -> None:
    many = tmp_path / "many"
    many.mkdir()
    # enough batches of small files for the readers to be forked and used
    count = (READERS_AFTER_BATCHES + 2) * SMALL_BATCH_FILES
    for i in range(count):
        (many / f"f{i}").write_bytes(os.urandom(i % 1000))
    readers_seen: set[int] = set()
    original = PooledProcess.call

    def noting(self: PooledProcess, request: object) -> Any:
        readers_seen.add(self.pid)
        return original(self, request)

    monkeypatch.setattr(PooledProcess, "call", noting)
    result = invoke("backup", str(repo_dir), str(many), "--readers", str(readers))
    assert result.exit_code == 0, result.output
    assert f"{count} files ({count} new" in result.output
    assert len(readers_seen) == readers


def test_backup_readers_cannot_be_negative(repo_dir: Path, src: Path) -> None:
    result = invoke("backup", str(repo_dir), str(src), "--readers", "-1")
    assert result.exit_code == 2 and "--readers" in result.output


def test_the_passphrase_comes_from_a_file(repo_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("secret\n")
    result = invoke("snapshots", str(repo_dir), "--password-file", str(secret), password=None)
    assert result.exit_code == 0, result.output
    assert "0 snapshots" in result.output
    secret.write_text("")
    one_line_error(
        invoke("snapshots", str(repo_dir), "--password-file", str(secret), password=None),
        3,
        "passphrase file is empty",
    )
    one_line_error(
        invoke("snapshots", str(repo_dir), "--password-file", str(tmp_path / "nope")),
        3,
        "cannot read the passphrase file",
    )


def test_no_passphrase_and_no_terminal_is_a_one_line_error(repo_dir: Path) -> None:
    result = invoke("snapshots", str(repo_dir), password=None)
    one_line_error(result, 2, "no passphrase for")
    assert "HAPROTECT_PASSWORD" in result.output


def test_wrong_passphrase_and_missing_repository(repo_dir: Path, tmp_path: Path) -> None:
    one_line_error(invoke("snapshots", str(repo_dir), password="nope"), 7, "wrong passphrase")
    # a backup unlocks in the background while it walks: the same one line, nothing written
    backup = invoke("backup", str(repo_dir), str(tmp_path), password="nope")
    one_line_error(backup, 7, "wrong passphrase")
    assert not any((repo_dir / "snapshots").glob("*")) and not any((repo_dir / "locks").glob("*"))
    result = invoke("check", str(tmp_path / "nothing"))
    one_line_error(result, 7, "no haprotect repository at")
    assert "haprotect repo init" in result.output


def test_a_locked_repository_is_exit_8_naming_the_holder(repo_dir: Path) -> None:
    held = Locker(LocalStore(repo_dir), pid=os.getppid(), refresh_every=None).acquire(
        exclusive=True, operation="prune"
    )
    try:
        result = invoke("check", str(repo_dir))
        one_line_error(result, 8, "is locked", "exclusive lock", "(prune)", f"pid {os.getppid()}")
        assert "unlock" in result.output
    finally:
        held.release()


def test_unlock_removes_a_dead_processes_lock(repo_dir: Path) -> None:
    Locker(LocalStore(repo_dir), pid=(1 << 22) + 7, refresh_every=None).acquire(
        exclusive=True, operation="prune"
    )
    result = invoke("unlock", str(repo_dir))
    assert result.exit_code == 0, result.output
    assert "removed exclusive lock" in result.output and "is gone" in result.output
    assert list(LocalStore(repo_dir).list("locks/")) == []


def test_forget_refuses_unclear_requests(repo_dir: Path) -> None:
    one_line_error(invoke("forget", str(repo_dir)), 2, "no keep rule")
    one_line_error(
        invoke("forget", str(repo_dir), "abc", "--keep-last", "1"), 2, "snapshot ids or --keep-*"
    )
    one_line_error(
        invoke("forget", str(repo_dir), "--keep-within", "3x"), 2, "'3x' is not a duration"
    )
    one_line_error(
        invoke("forget", str(repo_dir), "--keep-last", "1", "--group-by", "hots"),
        2,
        "cannot group snapshots by hots",
    )
    one_line_error(
        invoke("check", str(repo_dir), "--subset", "200%"), 2, "is not a subset of packs"
    )


def test_forget_dry_run_explains_each_decision(repo_dir: Path, src: Path) -> None:
    for _ in range(3):
        assert invoke("backup", str(repo_dir), str(src)).exit_code == 0
    result = invoke("forget", str(repo_dir), "--keep-last", "2", "--dry-run", "--prune")
    assert result.exit_code == 0, result.output
    assert result.output.count("keep-last 2: the") == 2
    assert "no keep rule applies" in result.output
    assert "would remove 1 snapshot" in result.output and "would free" in result.output
    assert len(json_lines(invoke("snapshots", str(repo_dir), "--json"))[-1]["snapshots"]) == 3


def test_check_exit_code_and_findings(repo_dir: Path, src: Path) -> None:
    assert invoke("backup", str(repo_dir), str(src)).exit_code == 0
    clean = invoke("check", str(repo_dir), "--read-data")
    assert clean.exit_code == 0 and "no errors" in clean.output
    pack = next(p for p in (repo_dir / "data").rglob("*") if p.is_file())
    pack.unlink()
    result = invoke("check", str(repo_dir), "--json")
    assert result.exit_code == 7
    summary = json_lines(result)[-1]
    assert summary["ok"] is False
    assert any(f["pack"] == pack.name and f["kind"] == "missing-pack" for f in summary["findings"])


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("init", "passphrase"),
        ("backup", "--tag"),
        ("snapshots", "oldest first"),
        ("restore", "--target"),
        ("forget", "--keep-within"),
        ("prune", "exclusive lock"),
        ("check", "--read-data"),
        ("stats", "deduplication"),
        ("unlock", "--remove-all"),
    ],
)
def test_every_command_has_help(command: str, needle: str) -> None:
    result = runner.invoke(app, ["repo", command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert needle in result.output


def test_restore_takes_a_number_of_processes(repo_dir: Path, src: Path, tmp_path: Path) -> None:
    assert invoke("backup", str(repo_dir), str(src)).exit_code == 0
    for processes in ("1", "3"):
        out = tmp_path / f"out-{processes}"
        result = invoke(
            "restore", str(repo_dir), "latest", "--target", str(out), "--processes", processes
        )
        assert result.exit_code == 0, result.output
        restored = out / str(src).lstrip("/")
        assert (restored / "b.bin").read_bytes() == (src / "b.bin").read_bytes()
        assert (restored / "a.txt").read_text() == "alpha\n" * 100
    refused = invoke(
        "restore", str(repo_dir), "latest", "--target", str(tmp_path / "x"), "--processes", "0"
    )
    assert refused.exit_code == 2 and "--processes" in refused.output
