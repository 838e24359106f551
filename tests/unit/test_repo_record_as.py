"""A backup recorded under another name: a staging directory kept under one stable path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from haprotect.errors import UsageError
from haprotect.repo import KdfParams, Repository
from haprotect.storage.memory import MemoryStore
from haprotect.testing.repo import describe, make_awkward_tree

STABLE = "/haprotect/c1/datasets/data"


@pytest.fixture
def repo() -> Repository:
    return Repository.init(MemoryStore(), "secret", kdf=KdfParams(n=1 << 10))


def test_a_tree_read_from_one_place_is_recorded_and_restored_under_another(
    repo: Repository, tmp_path: Path
) -> None:
    first = tmp_path / "staging-1" / "data"
    make_awkward_tree(first)
    snapshot = repo.backup([first], record_as=STABLE)
    assert snapshot.paths == (STABLE,)
    assert snapshot.stats.errors == 0
    assert not any("staging" in n.path for n in repo.nodes(snapshot))
    out = tmp_path / "out"
    assert repo.restore(snapshot.id, out).errors == ()
    assert describe(out / STABLE.lstrip("/")) == describe(first)


def test_the_next_backup_of_another_staging_directory_has_the_first_as_parent(
    repo: Repository, tmp_path: Path
) -> None:
    first = tmp_path / "staging-1" / "data"
    first.mkdir(parents=True)
    (first / "a.txt").write_text("alpha\n")
    one = repo.backup([first], record_as=STABLE)
    second = tmp_path / "staging-2" / "data"
    shutil.copytree(first, second)
    two = repo.backup([second], record_as=STABLE)
    assert two.parent == one.id
    assert two.paths == one.paths
    out = tmp_path / "out"
    repo.restore(two.id, out)
    assert (out / STABLE.lstrip("/") / "a.txt").read_text() == "alpha\n"


def test_a_single_file_can_be_recorded_under_another_name(repo: Repository, tmp_path: Path) -> None:
    image = tmp_path / "device.img"
    image.write_bytes(b"\x01" * 5000)
    snapshot = repo.backup([image], record_as="/haprotect/c1/datasets/disk")
    out = tmp_path / "out"
    repo.restore(snapshot.id, out)
    assert (out / "haprotect/c1/datasets/disk").read_bytes() == b"\x01" * 5000


@pytest.mark.parametrize("name", ["relative/x", "/", "/a/../b", "/a//b", "/a/./b", "/a/"])
def test_only_an_absolute_normal_path_can_be_the_recorded_name(
    repo: Repository, tmp_path: Path, name: str
) -> None:
    with pytest.raises(UsageError, match="cannot record"):
        repo.backup([tmp_path], record_as=name)


def test_only_one_path_can_be_recorded_under_another_name(repo: Repository, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(UsageError, match="only one path"):
        repo.backup([tmp_path / "a", tmp_path / "b"], record_as=STABLE)
