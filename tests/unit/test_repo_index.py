"""The in-memory index: locations, the first place of a chunk listed twice, compactness."""

from __future__ import annotations

import gc
import os

from haprotect.repo.format.index import (
    BlobLocation,
    Index,
    decode_index_tables,
    encode_index,
    entry_table,
)
from haprotect.repo.format.pack import BlobType, PackEntry, PackInfo


def pack(name: str, blob_type: BlobType = BlobType.DATA) -> PackInfo:
    return PackInfo(name * 64, blob_type, os.urandom(32))


def entries(*ids: bytes, start: int = 100) -> list[PackEntry]:
    return [
        PackEntry(chunk_id, start + 10 * n, 10 + n, 20 + n, n % 2) for n, chunk_id in enumerate(ids)
    ]


A, B, C, D = (bytes([n]) * 32 for n in range(1, 5))


def test_locations_of_every_chunk_of_every_pack() -> None:
    first, second = pack("a"), pack("b", BlobType.TREE)
    index = Index()
    index.add_table(first, entry_table(entries(A, B)))
    index.add_pack(second, entries(C, start=7))
    assert len(index) == 3 and A in index and D not in index
    assert index.lookup(A) == BlobLocation(first, 100, 10, 20, 0)
    assert index.lookup(B) == BlobLocation(first, 110, 11, 21, 1)
    assert index.lookup(C) == BlobLocation(second, 7, 10, 20, 0)
    assert index.lookup(D) is None
    assert index.raw_length(B) == 21
    assert index.has_all([A, C]) and not index.has_all([A, D])
    assert index.packs() == (first, second)
    assert sorted(index.chunk_ids()) == [A, B, C]


def test_a_chunk_listed_twice_keeps_its_first_place() -> None:
    """Two backups may store one chunk at once; a table may even list it twice."""
    first, second, third = pack("a"), pack("b"), pack("c")
    index = Index()
    index.add_pack(first, entries(A, B))
    index.add_pack(second, entries(B, C, B, D, start=500))
    index.add_pack(third, entries(D, start=900))
    assert index.lookup(B) == BlobLocation(first, 110, 11, 21, 1)
    assert index.lookup(C) == BlobLocation(second, 510, 11, 21, 1)
    assert index.lookup(D) == BlobLocation(second, 530, 13, 23, 1)
    assert len(index) == 4
    # a table listing a chunk twice: the first of the two
    twice = Index()
    twice.add_pack(first, entries(A, B, A, start=0))
    assert twice.lookup(A) == BlobLocation(first, 0, 10, 20, 0)


def test_tables_from_index_blobs_and_trailers_are_taken_as_they_are() -> None:
    first, second = pack("a"), pack("b")
    blob = encode_index([(first, entry_table(entries(A, B))), (second, entry_table([]))])
    tables = decode_index_tables(blob, "test index")
    assert [info for info, _ in tables] == [first, second]
    index = Index()
    for info, table in tables:
        index.add_table(info, table)
    assert index.lookup(B) == BlobLocation(first, 110, 11, 21, 1) and len(index) == 2


def test_the_garbage_collector_has_nothing_to_walk_per_chunk() -> None:
    """A location is no object of its own: the collector has no more to track per chunk."""
    ids = [os.urandom(32) for _ in range(5000)]
    table = entry_table(entries(*ids))
    index = Index()
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        index.add_table(pack("a"), table)
        assert len(gc.get_objects()) - before < 10
        assert not gc.is_tracked(index._blobs)
    finally:
        gc.enable()
    assert index.lookup(ids[4321]) == BlobLocation(
        index.packs()[0], 100 + 43210, 10 + 4321, 20 + 4321, 1
    )


def test_a_pack_listed_again_adds_nothing() -> None:
    """Two index blobs may list one pack (an interrupted prune): its entries are the same."""
    first = pack("a")
    index = Index()
    index.add_pack(first, entries(A, B))
    size = len(index._entries)
    index.add_pack(first, entries(A, B))
    assert len(index._entries) == size and len(index) == 2
    assert index.packs() == (first,)


def test_a_pack_without_entries_is_still_known() -> None:
    empty = pack("e")
    index = Index()
    index.add_table(empty, b"")
    assert index.packs() == (empty,) and len(index) == 0
