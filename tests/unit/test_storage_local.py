"""LocalStore: the conformance suite, plus what only a directory can show."""

from __future__ import annotations

import errno
import mmap
import os
import stat
import time
from pathlib import Path

import pytest

from haprotect.errors import UsageError
from haprotect.storage import open_store
from haprotect.storage.base import (
    BlobNotFound,
    BlobStore,
    PermanentStorageError,
    TransientStorageError,
    get_range_into,
    put_buffer,
)
from haprotect.storage.local import DIRECT_MIN, TEMP_SUFFIX, LocalStore, path_from_url
from haprotect.storage.localfiles import LocalFiles
from haprotect.storage.memory import MemoryStore
from haprotect.storage.wrappers import RetryingStore
from haprotect.testing.storage_conformance import (
    BlobStoreConformance,
    StrictInputConformance,
)


class TestLocalStore(BlobStoreConformance, StrictInputConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return LocalStore(tmp_path / "repo")

    def wait_until_writing(self, store: BlobStore) -> None:
        """Wait for the child's temporary file, so the kill lands mid-write."""
        assert isinstance(store, LocalStore)
        deadline = time.monotonic() + 20
        while not list((store.root / "data").glob(f"*{TEMP_SUFFIX}")):
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.005)


def test_killed_writer_leaves_only_a_temp_file_behind(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("data/ab/kept", b"whole")
    leftover = tmp_path / "data" / "ab" / f".abc123{TEMP_SUFFIX}"
    leftover.write_bytes(b"half a bl")
    assert [i.key for i in store.list()] == ["data/ab/kept"]
    assert [i.key for i in store.list("data/ab/")] == ["data/ab/kept"]


def test_put_writes_the_key_path_and_no_temp_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "new" / "repo")
    store.put("data/3f/3f2a", b"blob")
    assert (tmp_path / "new" / "repo" / "data" / "3f" / "3f2a").read_bytes() == b"blob"
    assert sorted(p.name for p in (tmp_path / "new" / "repo" / "data" / "3f").iterdir()) == ["3f2a"]


def test_blobs_are_private_to_the_owner(tmp_path: Path) -> None:
    LocalStore(tmp_path).put("config", b"secret-ish")
    assert stat.S_IMODE((tmp_path / "config").stat().st_mode) == 0o600


def test_url_and_bare_path_name_the_same_directory(tmp_path: Path) -> None:
    by_url = LocalStore.from_url((tmp_path / "my repo").as_uri())
    assert by_url.root == tmp_path / "my repo"
    assert LocalStore.from_url(str(tmp_path / "my repo")).root == by_url.root
    assert path_from_url(by_url.url) == by_url.root
    assert path_from_url("file://localhost/srv/repo") == Path("/srv/repo")


@pytest.mark.parametrize(
    "url", ["file://otherhost/srv/repo", "file:///srv/repo?x=1", "file://", "s3://bucket"]
)
def test_bad_file_urls(url: str) -> None:
    with pytest.raises(UsageError):
        path_from_url(url)


def test_open_store_gives_a_wrapped_local_store(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    store.put("k", b"v")
    assert LocalStore(tmp_path).get("k") == b"v"
    assert store.url == tmp_path.as_uri()


def test_a_file_where_a_directory_should_be_is_permanent(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("data", b"a blob, not a directory")
    with pytest.raises(PermanentStorageError):
        store.put("data/ab/x", b"x")
    with pytest.raises(BlobNotFound):
        store.get("data/ab/x")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOENT, BlobNotFound),
        (errno.ENOTDIR, BlobNotFound),
        (errno.EIO, TransientStorageError),
        (errno.EAGAIN, TransientStorageError),
        (errno.ESTALE, TransientStorageError),
        (errno.ENOSPC, PermanentStorageError),
        (errno.EACCES, PermanentStorageError),
        (errno.EROFS, PermanentStorageError),
    ],
)
def test_errors_are_classified_by_errno(code: int, expected: type[Exception]) -> None:
    error = LocalFiles(Path("/srv/repo")).classify(OSError(code, os.strerror(code)), "data/x")
    assert type(error) is expected
    assert str(error) == f"file:///srv/repo: data/x: {os.strerror(code)}"


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOSPC])
def test_permanent_errors_say_what_to_do(code: int) -> None:
    error = LocalFiles(Path("/srv/repo")).classify(OSError(code, os.strerror(code)), "k")
    assert error.hint is not None
    assert "/srv/repo" in error.hint


def test_missing_directory_while_writing_is_not_not_found() -> None:
    error = LocalFiles(Path("/srv/repo")).classify(OSError(errno.ENOENT, "gone"), "k", writing=True)
    assert type(error) is PermanentStorageError


def test_failed_write_removes_its_temp_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("dir/blob", b"x")
    with pytest.raises(PermanentStorageError):
        store.put("dir", b"cannot replace a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


@pytest.mark.parametrize(
    "length", [10, DIRECT_MIN - 1, DIRECT_MIN, DIRECT_MIN + 4096, 3 * DIRECT_MIN + 123]
)
def test_put_buffer_stores_exactly_the_given_bytes(tmp_path: Path, length: int) -> None:
    store = LocalStore(tmp_path)
    buffer = mmap.mmap(-1, -(-(length + 1) // mmap.PAGESIZE) * mmap.PAGESIZE)
    payload = os.urandom(length)
    buffer[:length] = payload
    buffer[length : length + 1] = b"!"  # bytes after the length are never stored
    put_buffer(store, "data/ab/pack", buffer, length)
    path = tmp_path / "data" / "ab" / "pack"
    assert path.read_bytes() == payload
    assert sorted(p.name for p in path.parent.iterdir()) == ["pack"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_put_buffer_through_wrappers_and_other_stores(tmp_path: Path) -> None:
    buffer = mmap.mmap(-1, 2 * DIRECT_MIN)
    buffer[:] = os.urandom(2 * DIRECT_MIN)
    length = DIRECT_MIN + 5
    local = open_store(str(tmp_path / "repo"))
    put_buffer(local, "k", buffer, length)
    memory = MemoryStore()
    put_buffer(RetryingStore(memory), "k", buffer, length)
    assert local.get("k") == memory.get("k") == buffer[:length]


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, 100),
        (1, DIRECT_MIN),
        (4095, DIRECT_MIN + 2),
        (4096, 2 * DIRECT_MIN),
        (5, 3 * DIRECT_MIN),
    ],
)
def test_get_range_into_reads_like_get_range(tmp_path: Path, offset: int, length: int) -> None:
    data = os.urandom(3 * DIRECT_MIN + 7)
    store = open_store(str(tmp_path))
    store.put("data/ab/pack", data)
    buffer = mmap.mmap(-1, length + 2 * mmap.PAGESIZE)
    view = get_range_into(store, "data/ab/pack", offset, length, buffer)
    assert bytes(view) == store.get_range("data/ab/pack", offset, length)
    assert bytes(view) == data[offset : offset + length]
    with pytest.raises(BlobNotFound):
        get_range_into(store, "data/ab/missing", offset, length, buffer)
    memory = MemoryStore()
    memory.put("k", data)
    assert (
        bytes(get_range_into(memory, "k", offset, length, buffer)) == data[offset : offset + length]
    )
