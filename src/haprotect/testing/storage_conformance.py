"""The conformance suite every blob store passes (DESIGN.md, convention 10).

A backend's test module subclasses the suite and provides a ``store``
fixture giving a fresh, empty store::

    class TestLocalStore(BlobStoreConformance, StrictInputConformance):
        @pytest.fixture
        def store(self, tmp_path: Path) -> BlobStore:
            return LocalStore(tmp_path / "repo")

The killed-writer test runs ``put`` in a child process that reopens
``store.url`` with :func:`haprotect.storage.open_store` and is killed part
way; a subclass whose store cannot be reopened by URL in another process
(MemoryStore) sets ``reopen_by_url = False``, and one that needs
credentials for it overrides :meth:`child_env`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import pytest

from haprotect.storage.base import BlobNotFound, BlobStore, InvalidKeyError, StoreFeature

MiB = 1 << 20

_CHILD_PUT = """
import sys
from haprotect.storage import open_store
store = open_store(sys.argv[1], retry=False)
data = bytes(int(sys.argv[3]))
print("writing", flush=True)
store.put(sys.argv[2], data)
print("done", flush=True)
"""


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` reproducible random bytes, so a wrong range or a mix-up shows."""
    return random.Random(seed).randbytes(size)


def keys_of(store: BlobStore, prefix: str = "") -> set[str]:
    return {info.key for info in store.list(prefix)}


class BlobStoreConformance:
    """What every BlobStore does; subclasses provide the ``store`` fixture."""

    reopen_by_url: ClassVar[bool] = True
    killed_blob_size: ClassVar[int] = 256 * MiB

    def child_env(self) -> dict[str, str]:
        """Extra environment for a child process that opens ``store.url``."""
        return {}

    def test_declared_features_are_methods(self, store: BlobStore) -> None:
        assert store.features <= frozenset(StoreFeature)
        for feature in store.features:
            assert callable(getattr(store, feature.value, None)), feature

    @pytest.mark.parametrize("size", [0, 1, 1000, 5 * MiB + 3])
    def test_put_get_round_trip(self, store: BlobStore, size: int) -> None:
        data = pattern(size, seed=size)
        store.put("data/ab/blob", data)
        assert store.get("data/ab/blob") == data

    def test_large_blob(self, store: BlobStore) -> None:
        data = pattern(20 * MiB)
        store.put("data/large", data)
        assert store.get("data/large") == data
        assert [i.size for i in store.list("data/large")] == [len(data)]
        assert store.get_range("data/large", 17 * MiB + 5, 1000) == data[17 * MiB + 5 :][:1000]

    def test_get_range(self, store: BlobStore) -> None:
        data = pattern(10_000)
        store.put("packs/p", data)
        assert store.get_range("packs/p", 0, 10) == data[:10]
        assert store.get_range("packs/p", 1234, 4321) == data[1234:5555]
        assert store.get_range("packs/p", 9_990, 10) == data[9_990:]
        assert store.get_range("packs/p", 9_995, 100) == data[9_995:]
        assert store.get_range("packs/p", 10_000, 5) == b""
        assert store.get_range("packs/p", 20_000, 5) == b""
        assert store.get_range("packs/p", 5, 0) == b""

    def test_get_range_of_empty_blob(self, store: BlobStore) -> None:
        store.put("empty", b"")
        assert store.get_range("empty", 0, 10) == b""

    def test_overwrite_replaces(self, store: BlobStore) -> None:
        store.put("locks/lock-1", b"first version, longer")
        store.put("locks/lock-1", b"second")
        assert store.get("locks/lock-1") == b"second"
        assert [i.size for i in store.list("locks/")] == [6]

    def test_exists(self, store: BlobStore) -> None:
        assert not store.exists("config")
        store.put("config", b"{}")
        assert store.exists("config")
        assert not store.exists("confi")
        assert not store.exists("config2")

    def test_delete(self, store: BlobStore) -> None:
        store.put("snapshots/s1", b"1")
        store.put("snapshots/s2", b"2")
        store.delete("snapshots/s1")
        assert not store.exists("snapshots/s1")
        assert keys_of(store) == {"snapshots/s2"}
        with pytest.raises(BlobNotFound):
            store.get("snapshots/s1")

    def test_missing_key(self, store: BlobStore) -> None:
        with pytest.raises(BlobNotFound):
            store.get("data/00/missing")
        with pytest.raises(BlobNotFound):
            store.get_range("data/00/missing", 0, 10)
        with pytest.raises(BlobNotFound):
            store.delete("data/00/missing")

    def test_a_prefix_of_keys_is_not_a_blob(self, store: BlobStore) -> None:
        store.put("dir/blob", b"x")
        assert not store.exists("dir")
        with pytest.raises(BlobNotFound):
            store.get("dir")
        with pytest.raises(BlobNotFound):
            store.delete("dir")
        assert store.get("dir/blob") == b"x"

    def test_list_under_prefixes(self, store: BlobStore) -> None:
        blobs = {
            "config": b"c",
            "data/00/00aa": b"1",
            "data/00/00ab": b"22",
            "data/01/01ba": b"333",
            "data/01/deep/er/still": b"4444",
            "database": b"55555",
            "index/i1": b"666666",
        }
        for key, data in blobs.items():
            store.put(key, data)
        assert {(i.key, i.size) for i in store.list()} == {(k, len(v)) for k, v in blobs.items()}
        assert keys_of(store, "data/") == {k for k in blobs if k.startswith("data/")}
        assert keys_of(store, "data") == {k for k in blobs if k.startswith("data")}
        assert keys_of(store, "data/00/") == {"data/00/00aa", "data/00/00ab"}
        assert keys_of(store, "data/0") == {k for k in blobs if k.startswith("data/0")}
        assert keys_of(store, "data/00/00a") == {"data/00/00aa", "data/00/00ab"}
        assert keys_of(store, "data/01/deep/") == {"data/01/deep/er/still"}
        assert keys_of(store, "config") == {"config"}
        assert keys_of(store, "nothing/") == set()
        assert keys_of(store, "nothing/at/all/") == set()

    def test_list_of_empty_store(self, store: BlobStore) -> None:
        assert keys_of(store) == set()

    def test_odd_keys(self, store: BlobStore) -> None:
        keys = [
            "data/3f/" + "3f" * 32,
            "locks/host-name.example-1234-abcdef",
            "snapshots/2026-11-24T20-11-46Z_01",
            "a/b/c/d/e/f/g/h/i/j/k",
            "UPPER/lower.Mixed-_.x",
            "x" * 200,
        ]
        for n, key in enumerate(keys):
            store.put(key, str(n).encode())
        for n, key in enumerate(keys):
            assert store.get(key) == str(n).encode()
        assert keys_of(store) == set(keys)

    def test_concurrent_puts(self, store: BlobStore) -> None:
        def write(n: int) -> None:
            store.put(f"data/{n % 4:02x}/{n:064x}", pattern(10_000 + n, seed=n))
            store.put("locks/shared", pattern(50_000, seed=n))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(48)))
        assert len(keys_of(store, "data/")) == 48
        for n in range(48):
            assert store.get(f"data/{n % 4:02x}/{n:064x}") == pattern(10_000 + n, seed=n)
        shared = store.get("locks/shared")
        assert shared in {pattern(50_000, seed=n) for n in range(48)}

    def test_concurrent_reads_and_writes(self, store: BlobStore) -> None:
        store.put("blob", pattern(100_000, seed=1))
        versions = {pattern(100_000, seed=s) for s in (1, 2)}
        failures: list[bytes] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                data = store.get("blob")
                if data not in versions:
                    failures.append(data)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in readers:
            thread.start()
        try:
            for n in range(20):
                store.put("blob", pattern(100_000, seed=1 + n % 2))
        finally:
            stop.set()
            for thread in readers:
                thread.join()
        assert failures == []

    def test_killed_writer_leaves_no_partial_blob(self, store: BlobStore) -> None:
        if not self.reopen_by_url:
            pytest.skip("an in-process store dies with its writer")
        size = self.killed_blob_size
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD_PUT, store.url, "data/killed", str(size)],
            stdout=subprocess.PIPE,
            env={**os.environ, **self.child_env()},
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "writing"
            self.wait_until_writing(store)
        finally:
            child.send_signal(signal.SIGKILL)
            child.communicate()
        sizes = [i.size for i in store.list() if i.key == "data/killed"]
        assert sizes in ([], [size])
        assert keys_of(store) <= {"data/killed"}
        if store.exists("data/killed"):
            assert store.get_range("data/killed", size - 3, 10) == bytes(3)

    def wait_until_writing(self, store: BlobStore) -> None:
        """Return once the child is part-way through its put."""
        time.sleep(0.1)


class StrictInputConformance:
    """Keys, prefixes and ranges outside the contract are refused before any I/O."""

    BAD_KEYS: ClassVar[list[str]] = [
        "",
        "/abs",
        "../escape",
        "a/../../escape",
        "a/./b",
        "a//b",
        "trailing/",
        ".",
        "..",
        "back\\slash",
        "nul\x00byte",
        "space key",
        "temp.tmp~",
        "é",
        "x" * 256,
    ]
    BAD_PREFIXES: ClassVar[list[str]] = ["/", "../", "a/../", "//", "a//", "~", "a b"]

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_are_refused(self, store: BlobStore, key: str) -> None:
        with pytest.raises(InvalidKeyError):
            store.put(key, b"x")
        with pytest.raises(InvalidKeyError):
            store.get(key)
        with pytest.raises(InvalidKeyError):
            store.get_range(key, 0, 1)
        with pytest.raises(InvalidKeyError):
            store.exists(key)
        with pytest.raises(InvalidKeyError):
            store.delete(key)

    @pytest.mark.parametrize("prefix", BAD_PREFIXES)
    def test_bad_prefixes_are_refused(self, store: BlobStore, prefix: str) -> None:
        with pytest.raises(InvalidKeyError):
            list(store.list(prefix))

    def test_get_range_rejects_negative_numbers(self, store: BlobStore) -> None:
        store.put("k", b"abc")
        with pytest.raises(ValueError):
            store.get_range("k", -1, 2)
        with pytest.raises(ValueError):
            store.get_range("k", 0, -2)
