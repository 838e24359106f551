"""Turning chunks into stored blobs: hash, deduplicate, compress, encrypt, pack.

:meth:`BlobSink.store` runs on the worker threads of a backup. Each thread
has its own zstd compressor and its own data pack, so workers never wait for
each other except for the brief claim of a new chunk id; hashing, compression
and encryption all release the GIL. A chunk that is all zeros is not stored:
it becomes a hole (its length) in the file's content.
"""

from __future__ import annotations

import threading

import zstandard

from haprotect.model.snapshot import ContentEntry
from haprotect.repo.crypto import MasterKey
from haprotect.repo.index import Index
from haprotect.repo.pack import FLAG_ZSTD, BlobType, PackWriter
from haprotect.repo.uploader import Uploader

_ZERO_IDS_MAX = 256


class BlobSink:
    def __init__(
        self,
        key: MasterKey,
        index: Index,
        uploader: Uploader,
        *,
        pack_size: int,
        max_blob: int,
        level: int,
    ) -> None:
        self._key = key
        self._index = index
        self._uploader = uploader
        self._pack_size = pack_size
        self._max_blob = max_blob
        self._level = level
        self._lock = threading.Lock()
        self._claimed: set[bytes] = set()
        self._local = threading.local()
        self._writers: list[PackWriter] = []
        self._zero_ids: dict[int, bytes] = {}
        self.chunks_added = 0

    def _claim(self, chunk_id: bytes) -> bool:
        """True for the first thread to store ``chunk_id`` in this repository."""
        with self._lock:
            if chunk_id in self._claimed or chunk_id in self._index:
                return False
            self._claimed.add(chunk_id)
            self.chunks_added += 1
            return True

    def _is_zero(self, data: memoryview, chunk_id: bytes) -> bool:
        size = len(data)
        if not size or data[0] or data[-1] or data[size // 2]:
            return False
        zero_id = self._zero_ids.get(size)
        if zero_id is None:
            zero_id = self._key.chunk_id(bytes(size))
            if len(self._zero_ids) < _ZERO_IDS_MAX:
                self._zero_ids[size] = zero_id
        return chunk_id == zero_id

    def _thread_state(self) -> tuple[zstandard.ZstdCompressor, PackWriter]:
        local = self._local
        state: tuple[zstandard.ZstdCompressor, PackWriter] | None = getattr(local, "state", None)
        if state is None:
            writer = PackWriter(self._key, BlobType.DATA, self._pack_size, self._max_blob)
            state = (zstandard.ZstdCompressor(level=self._level), writer)
            local.state = state
            with self._lock:
                self._writers.append(writer)
        return state

    def store(self, data: memoryview) -> ContentEntry:
        """Store one data chunk (if new); return its id, or its length if all zeros."""
        chunk_id = self._key.chunk_id(data)
        if self._is_zero(data, chunk_id):
            return len(data)
        if not self._claim(chunk_id):
            return chunk_id
        compressor, writer = self._thread_state()
        self._add(writer, compressor, chunk_id, data)
        return chunk_id

    def store_tree(self, writer: PackWriter, data: bytes) -> bytes:
        """Store one tree chunk through ``writer`` (the caller's own tree pack)."""
        chunk_id = self._key.chunk_id(data)
        if self._claim(chunk_id):
            compressor, _ = self._thread_state()
            self._add(writer, compressor, chunk_id, memoryview(data))
        return chunk_id

    def _add(
        self,
        writer: PackWriter,
        compressor: zstandard.ZstdCompressor,
        chunk_id: bytes,
        data: memoryview,
    ) -> None:
        packed = compressor.compress(data)
        if len(packed) < len(data):
            writer.add(chunk_id, packed, len(data), FLAG_ZSTD)
        else:
            writer.add(chunk_id, data, len(data), 0)
        if writer.full:
            self._uploader.submit(writer.finish())

    def new_tree_writer(self) -> PackWriter:
        return PackWriter(self._key, BlobType.TREE, self._pack_size, self._max_blob)

    def flush(self, *extra: PackWriter) -> None:
        """Send every unfinished pack; call only when no worker is storing."""
        for writer in (*self._writers, *extra):
            if not writer.empty:
                self._uploader.submit(writer.finish())
