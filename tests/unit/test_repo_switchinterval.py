"""The shorter thread switch interval of a backup's pipeline, and its restoration."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from haprotect.repo import KdfParams, Repository
from haprotect.repo.backup.filereader import open_for_reading
from haprotect.repo.backup.parts import BackupParts
from haprotect.repo.backup.run import run_backup
from haprotect.repo.backup.walker import SourceFiles
from haprotect.repo.process.switchinterval import PIPELINE_SWITCH_INTERVAL, short_switch_interval
from haprotect.storage.memory import MemoryStore


@pytest.fixture(autouse=True)
def default_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(before)


def test_lowered_inside_and_restored_after() -> None:
    with short_switch_interval():
        assert sys.getswitchinterval() == pytest.approx(PIPELINE_SWITCH_INTERVAL, abs=2e-6)
    assert sys.getswitchinterval() == pytest.approx(0.005, abs=2e-6)


def test_overlapping_users_restore_once_the_last_one_ends() -> None:
    first, second = short_switch_interval(), short_switch_interval()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(PIPELINE_SWITCH_INTERVAL, abs=2e-6)
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(0.005, abs=2e-6)


def test_a_shorter_interval_is_kept_and_restored_after_an_error() -> None:
    sys.setswitchinterval(0.0002)
    with pytest.raises(RuntimeError), short_switch_interval():
        assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)


def test_a_backup_runs_its_pipeline_with_it(tmp_path: Path) -> None:
    seen: list[float] = []

    def noting(path: bytes) -> int:
        seen.append(sys.getswitchinterval())
        return open_for_reading(path)

    (tmp_path / "f").write_text("data")
    repo = Repository.init(MemoryStore("memory://switch/"), "pw", kdf=KdfParams(n=1 << 10))
    run_backup(repo, [tmp_path], parts=BackupParts(files=SourceFiles(open=noting)))
    assert seen and all(s == pytest.approx(PIPELINE_SWITCH_INTERVAL, abs=2e-6) for s in seen)
    assert sys.getswitchinterval() == pytest.approx(0.005, abs=2e-6)
