"""Turning chunks into stored blobs: hash, deduplicate, compress, encrypt, pack.

:meth:`BlobSink.store` runs on the worker threads of a backup. Each thread
hashes and compresses with its own zstd compressor (both release the GIL);
the threads then take turns to encrypt their blobs straight into the data
pack being filled (a few microseconds per blob): one for the chunks of large
files, one for small files, however many threads there are. The chunks of
one read of a large file, or of a batch of small files, go in together, in
the order of the tree, which a restore follows. Keeping large and small
apart means a large file's packs hold only its chunks (and its neighbours'),
which a prune frees whole when it is deleted. A filled pack is sealed only
once the uploader has room for it, which bounds the memory a backup needs
whatever the speed of the store. A chunk that is all zeros is not stored: it
becomes a hole (its length) in the file's content.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import zstandard

from haprotect.model.snapshot import ContentEntry
from haprotect.repo.blobs.packwriter import FinishedPack, PackBuffers, PackWriter, pack_capacity
from haprotect.repo.blobs.uploader import Uploader
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.format.pack import FLAG_ZSTD, BlobType

_ZERO_IDS_MAX = 256
# Chunks up to this size (fixed blocks of page-structured files, small files)
# are compressed one level lower: on them zstd's level 3 gains under 0.5 % of
# size over level 2 for about 30 % more time (docs/design/repository-format.md).
LOWER_LEVEL_MAX = 256 * 1024
# And up to this size (small files) two levels lower: for inputs this small
# zstd's level 1 and 2 differ only in their shortest match, and level 1 is
# 10 % faster and no larger (0.5 % smaller on the benchmark's small files).
LOWEST_LEVEL_MAX = 16 * 1024


NewBlob = tuple[bytes, int, "bytes | memoryview"]
"""A chunk to store: its id, its length, and its bytes as stored (compressed or not)."""


class ZeroChunks:
    """Tells chunks that are all zeros (stored as holes) by their ids."""

    def __init__(self, key: MasterKey) -> None:
        self._key = key
        self._ids: dict[int, bytes] = {}

    def __call__(self, data: memoryview, chunk_id: bytes) -> bool:
        size = len(data)
        if not size or data[0] or data[-1] or data[size // 2]:
            return False
        zero_id = self._ids.get(size)
        if zero_id is None:
            zero_id = self._key.chunk_id(bytes(size))
            if len(self._ids) < _ZERO_IDS_MAX:
                self._ids[size] = zero_id
        return chunk_id == zero_id


class Compressors:
    """One thread's compressors: ``level``, one lower for chunks up to LOWER_LEVEL_MAX,
    two lower (at least 1) for chunks up to LOWEST_LEVEL_MAX."""

    def __init__(
        self,
        level: int,
        make: Callable[..., zstandard.ZstdCompressor] = zstandard.ZstdCompressor,
    ) -> None:
        """``make(level=...)`` makes a compressor: zstandard's, or a test's that notes the level."""
        self._levels = (_lower(level, 2), _lower(level, 1), level)
        self._make = make
        self._made: list[zstandard.ZstdCompressor | None] = [None, None, None]

    def __call__(self, size: int) -> zstandard.ZstdCompressor:
        tier = 0 if size <= LOWEST_LEVEL_MAX else 1 if size <= LOWER_LEVEL_MAX else 2
        compressor = self._made[tier]
        if compressor is None:
            compressor = self._made[tier] = self._make(level=self._levels[tier])
        return compressor


def _lower(level: int, by: int) -> int:
    """``level`` lowered by ``by``, to 1 at least (zstd's default, 0, and fast levels stay)."""
    return level if level <= 1 else max(1, level - by)


def prepare_chunks(
    chunks: list[memoryview],
    key: MasterKey,
    zeros: ZeroChunks,
    claim: Callable[[bytes], bool],
    compressor: Callable[[int], zstandard.ZstdCompressor],
) -> tuple[list[ContentEntry], list[NewBlob]]:
    """Each chunk's content entry (id, or length if all zeros), and those ``claim`` takes, packed.

    Hashing and compressing, the part of storing that needs no pack: a
    backup's worker threads and its reading processes
    (:class:`~haprotect.repo.backup.fileworker.SmallFileReader`) run it.
    """
    entries: list[ContentEntry] = []
    new: list[NewBlob] = []
    for data in chunks:
        chunk_id = key.chunk_id(data)
        if zeros(data, chunk_id):
            entries.append(len(data))
            continue
        entries.append(chunk_id)
        if claim(chunk_id):
            compressed = compressor(len(data)).compress(data)
            # incompressible: keep no copy
            new.append((chunk_id, len(data), compressed if len(compressed) < len(data) else data))
    return entries, new


class BlobSink:
    """Stores a backup's chunks and trees as blobs, each chunk once.

    Shared by the archiver's worker threads: it claims each new chunk id so that
    two threads never store the same chunk, and hands full packs to the uploader.
    """

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
        self._claimed: dict[bytes, object] = {}
        self._local = threading.local()
        # one buffer per pack being filled (two data packs, the caller's tree
        # pack) and one per pack the uploader may hold
        self._buffers = PackBuffers(pack_capacity(pack_size, max_blob), 3 + uploader.max_pending)
        # one thread writes out the pieces of every pack being filled, in order
        self._io = ThreadPoolExecutor(1, thread_name_prefix="haprotect-pack")
        # chunks of large files and small files go to separate packs, so the
        # packs of a deleted large file are freed whole by a prune
        self._writers = [
            (
                threading.Lock(),
                PackWriter(key, BlobType.DATA, pack_size, max_blob, self._buffers, uploader.stage),
            )
            for _ in range(2)
        ]
        self._zeros = ZeroChunks(key)

    @property
    def chunks_added(self) -> int:
        return len(self._claimed)

    def _claim(self, chunk_id: bytes) -> bool:
        """True for the first thread to store ``chunk_id`` in this repository.

        Without a lock: ``dict.setdefault`` with a bytes key is one step under
        the GIL, and the index does not change while a backup stores. (A lock
        taken here for every chunk was the most contended spot of a backup
        of small files.)
        """
        if chunk_id in self._index:
            return False
        mine = object()
        return self._claimed.setdefault(chunk_id, mine) is mine

    def _compressor(self, size: int) -> zstandard.ZstdCompressor:
        """This thread's compressor for a chunk of ``size`` bytes."""
        compressors: Compressors | None = getattr(self._local, "compressors", None)
        if compressors is None:
            compressors = self._local.compressors = Compressors(self._level)
        return compressors(size)

    def store(self, chunks: list[memoryview], *, small: bool = False) -> list[ContentEntry]:
        """Store chunks (those not stored yet); for each its id, or its length if all zeros.

        The new ones are packed together, in order, so that a restore, which
        reads in the same order, reads them with few requests. ``small``
        chunks (whole small files) go to the packs of small files.
        """
        entries, new = prepare_chunks(chunks, self._key, self._zeros, self._claim, self._compressor)
        if new:
            self._pack(new, small)
        return entries

    def store_prepared(self, blobs: list[NewBlob]) -> None:
        """Pack small files' chunks prepared by another process, those not stored yet.

        Each is ``(id, length, stored)``: ``stored`` is its compressed bytes,
        or the chunk itself where compressing did not make it shorter.
        """
        new = [blob for blob in blobs if self._claim(blob[0])]
        if new:
            self._pack(new, True)

    def _pack(self, new: list[NewBlob], small: bool) -> None:
        lock, writer = self._writers[small]
        with lock:
            for chunk_id, length, stored in new:
                finished = self._add(writer, chunk_id, length, stored)
                if finished is not None:
                    self._uploader.submit(finished, reserved=True)

    def store_tree(self, writer: PackWriter, data: bytes) -> bytes:
        """Store one tree chunk through ``writer`` (the caller's own tree pack)."""
        chunk_id = self._key.chunk_id(data)
        if self._claim(chunk_id):
            packed = self._compressor(len(data)).compress(data)
            stored = packed if len(packed) < len(data) else data
            finished = self._add(writer, chunk_id, len(data), stored)
            if finished is not None:
                self._uploader.submit(finished, reserved=True)
        return chunk_id

    def _add(
        self, writer: PackWriter, chunk_id: bytes, length: int, stored: bytes | memoryview
    ) -> FinishedPack | None:
        """Add one blob; return the pack if that filled it (its upload reserved)."""
        writer.add(chunk_id, stored, length, FLAG_ZSTD if len(stored) < length else 0)
        if not writer.full:
            return None
        # reserve before sealing, so the sealed copies in memory stay bounded
        self._uploader.reserve()
        try:
            return writer.finish()
        except BaseException:
            self._uploader.release()
            raise

    def new_tree_writer(self) -> PackWriter:
        # built whole in a buffer and stored through the page cache (see
        # FinishedPack.store): the next backup reads the trees back
        return PackWriter(self._key, BlobType.TREE, self._pack_size, self._max_blob, self._buffers)

    def close(self, *extra: PackWriter) -> None:
        """Drop every unfinished pack (after :meth:`flush`, there are none); end the writers."""
        try:
            for writer in (*(w for _, w in self._writers), *extra):
                writer.close()
        finally:
            self._io.shutdown(wait=True)

    def flush(self, *extra: PackWriter) -> None:
        """Send every unfinished pack; call only when no worker is storing."""
        for writer in (*(w for _, w in self._writers), *extra):
            if not writer.empty:
                self._uploader.reserve()
                self._uploader.submit(writer.finish(), reserved=True)
