"""Optional store features are declared (``features``), never guessed from a method's presence."""

from __future__ import annotations

import mmap
from pathlib import Path

from haprotect.storage import open_store
from haprotect.storage.base import (
    NO_FEATURES,
    StoreFeature,
    get_range_into,
    put_buffer,
    remove_leftovers,
    stage,
)
from haprotect.storage.local import LocalStore
from haprotect.storage.memory import MemoryStore


class Undeclared(MemoryStore):
    """Has every feature's method, declares none: each call is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.called: list[str] = []

    def stage(self, prefix: str) -> None:
        self.called.append("stage")

    def put_buffer(self, key: str, buffer: mmap.mmap, length: int) -> None:
        self.called.append("put_buffer")

    def get_range_into(self, key: str, offset: int, length: int, buffer: mmap.mmap) -> memoryview:
        self.called.append("get_range_into")
        return memoryview(b"")

    def remove_leftovers(self) -> int:
        self.called.append("remove_leftovers")
        return 7


class Declared(Undeclared):
    features = frozenset(StoreFeature)


def test_an_undeclared_method_is_not_taken_for_a_feature() -> None:
    store = Undeclared()
    assert store.features == NO_FEATURES
    buffer = mmap.mmap(-1, mmap.PAGESIZE * 3)
    buffer[:3] = b"abc"
    put_buffer(store, "data/ab/blob", buffer, 3)
    assert store.get("data/ab/blob") == b"abc"
    assert stage(store, "data") is None
    assert bytes(get_range_into(store, "data/ab/blob", 1, 2, buffer)) == b"bc"
    assert remove_leftovers(store) == 0
    assert store.called == []


def test_a_declared_feature_is_used() -> None:
    store = Declared()
    buffer = mmap.mmap(-1, mmap.PAGESIZE * 3)
    put_buffer(store, "data/ab/blob", buffer, 3)
    stage(store, "data")
    get_range_into(store, "data/ab/blob", 0, 3, buffer)
    assert remove_leftovers(store) == 7
    assert store.called == ["put_buffer", "stage", "get_range_into", "remove_leftovers"]


def test_wrappers_declare_what_the_store_inside_declares(tmp_path: Path) -> None:
    assert LocalStore(tmp_path).features == frozenset(StoreFeature)
    assert open_store(str(tmp_path / "repo")).features == frozenset(StoreFeature)
    assert open_store("memory://").features == NO_FEATURES
    # So a wrapped memory store stages nothing, where the wrapper has the method.
    assert stage(open_store("memory://"), "data") is None


def test_a_restore_finds_the_directory_of_a_wrapped_local_store(tmp_path: Path) -> None:
    from haprotect.repo.restore.processes import local_root

    assert local_root(open_store(str(tmp_path / "repo"))) == tmp_path / "repo"
    assert local_root(open_store("memory://")) is None
