"""Packs built in place in pooled buffers: what is stored is what the trailer says."""

from __future__ import annotations

import os
import threading

from haprotect.repo.blobs.packwriter import PackBuffers, PackWriter, pack_capacity
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.pack import ENTRY, BlobType, open_blob, read_pack
from haprotect.storage.base import put_buffer
from haprotect.storage.memory import MemoryStore

KiB = 1024
MiB = 1024 * KiB


def test_sealed_pack_reads_back_and_buffers_are_reused() -> None:
    key = MasterKey.generate()
    buffers = PackBuffers(pack_capacity(MiB, 256 * KiB), 1)
    writer = PackWriter(key, BlobType.DATA, MiB, 256 * KiB, buffers)
    blobs = [os.urandom(n) for n in (1, 100 * KiB, 256 * KiB, 7)]
    for blob in blobs:
        writer.add(key.chunk_id(blob), blob, len(blob), 0)
    first = writer.finish()
    data = bytes(first.data)
    info, entries = read_pack(key, data, first.info.id)
    assert info == first.info and entries == first.entries
    aead = key.subkey(info.salt)
    for blob, e in zip(blobs, entries, strict=True):
        stored = data[e.offset : e.offset + e.length]
        assert open_blob(aead, key, stored, e.id, e.flags, e.raw_length, info.id) == blob
    store = MemoryStore()
    assert first.buffer is not None
    put_buffer(store, first.info.key, first.buffer, first.size)
    assert store.get(first.info.key) == data
    buffer = first.buffer
    first.release()
    # the one buffer of the pool serves the next pack
    writer.add(key.chunk_id(b"x"), b"x", 1, 0)
    second = writer.finish()
    assert second.buffer is buffer
    read_pack(key, bytes(second.data), second.info.id)


def test_a_pack_counts_its_table_towards_its_size() -> None:
    key = MasterKey.generate()
    writer = PackWriter(key, BlobType.DATA, 64 * KiB, 4 * KiB)
    count = 0
    while not writer.full:
        writer.add(key.chunk_id(count.to_bytes(4, "little")), b"", 0, 0)
        count += 1
    pack = writer.finish()
    assert count * (28 + ENTRY.size) >= 64 * KiB - 40
    assert pack.size <= pack_capacity(64 * KiB, 4 * KiB)
    read_pack(key, bytes(pack.data), pack.info.id)


def test_a_full_pool_waits_for_a_buffer() -> None:
    buffers = PackBuffers(4096, 1)
    first = buffers.take()
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(buffers.take()))
    thread.start()
    thread.join(0.05)
    assert thread.is_alive() and not got
    buffers.give(first)
    thread.join(5)
    assert got == [first]
