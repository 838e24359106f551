"""MemoryStore passes the shared conformance suite."""

from __future__ import annotations

import pytest

from haprotect.storage import open_store
from haprotect.storage.base import BlobStore
from haprotect.storage.memory import MemoryStore
from haprotect.testing.storage_conformance import BlobStoreConformance, StrictInputConformance


class TestMemoryStore(BlobStoreConformance, StrictInputConformance):
    reopen_by_url = False

    @pytest.fixture
    def store(self) -> BlobStore:
        return MemoryStore()


def test_open_store_opens_a_fresh_memory_store() -> None:
    store = open_store("memory://")
    store.put("k", b"v")
    assert store.get("k") == b"v"
    assert not open_store("memory://").exists("k")
