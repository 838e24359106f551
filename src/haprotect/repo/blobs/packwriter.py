"""Writing packs: blobs encrypted into page-aligned buffers, sealed, stored.

The layout is :mod:`haprotect.repo.format.pack`'s. A pack is built in place, so
sealing it copies nothing, and either written out piece by piece while it
fills (where the store can stage a blob) or stored whole from its buffer.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haprotect.repo.format.crypto import NONCE_SIZE, SALT_SIZE, TAG_SIZE, MasterKey, counter_nonce
from haprotect.repo.format.pack import (
    BLOB_OVERHEAD,
    ENTRY,
    HEADER,
    HEADER_SIZE,
    LENGTH,
    PACK_MAGIC,
    PACK_VERSION,
    TRAILER_AAD,
    BlobType,
    PackEntry,
    PackInfo,
    blob_aad,
)
from haprotect.storage.base import BlobStore, StagedBlob, put_buffer

PAGE = mmap.PAGESIZE


def page_round(size: int) -> int:
    return -(-size // PAGE) * PAGE


def pack_capacity(target_size: int, max_blob: int) -> int:
    """The bytes a pack of ``target_size`` can reach (see :attr:`PackWriter.full`), in whole pages.

    A pack is full once its blobs and its table reach ``target_size``, so the
    last blob (at most ``max_blob`` plus its nonce and tag), its table entry
    and the trailer's nonce, tag and length are all that can pass it.
    """
    return page_round(target_size + max_blob + 2 * BLOB_OVERHEAD + ENTRY.size + LENGTH.size)


class PackBuffers:
    """At most ``count`` reusable, page-aligned pack buffers of ``size`` bytes.

    Packs are built in place in these buffers (no copy when sealing) and
    stored from them (:func:`~haprotect.storage.base.put_buffer`), and a
    buffer goes back to the pool once its pack is stored. A full pool makes
    :meth:`take` wait, so the memory of a backup's packs is ``count * size``
    whatever the speed of the store. The pages of an anonymous map are only
    backed by memory once written, so a buffer costs what its largest pack
    held. ``count=None`` means no limit (each pack gets a buffer of its own).
    """

    def __init__(self, size: int, count: int | None = None) -> None:
        self.size = page_round(size)
        self._free: queue.LifoQueue[mmap.mmap] = queue.LifoQueue()
        self._unmade = count
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._unmade is None:
                return mmap.mmap(-1, self.size)
            if self._unmade and self._free.empty():
                self._unmade -= 1
                return mmap.mmap(-1, self.size)
        return self._free.get()

    def give(self, buf: mmap.mmap) -> None:
        if self._unmade is not None:
            self._free.put(buf)


class FinishedPack:
    """A sealed pack: its id, its entry table (as its trailer and the index store it), its bytes.

    The bytes are in a buffer of a :class:`PackBuffers` (``data`` is valid
    until :meth:`release` gives it back), or already written out to the
    store, waiting to be committed under the pack's key (``staged``).
    """

    __slots__ = ("_buffers", "buffer", "info", "size", "staged", "table", "written")

    def __init__(
        self,
        info: PackInfo,
        buffer: mmap.mmap | None,
        size: int,
        table: bytes,
        buffers: PackBuffers | None = None,
        *,
        staged: StagedBlob | None = None,
        written: Future[None] | None = None,
    ) -> None:
        self.info = info
        self.buffer = buffer
        self.size = size
        self.table = table
        self.staged = staged
        """The pack already written out piece by piece, to commit under its key."""
        self.written = written
        """Done when the last piece of a staged pack is written out."""
        self._buffers = buffers

    @property
    def entries(self) -> list[PackEntry]:
        return [PackEntry(*fields) for fields in ENTRY.iter_unpack(self.table)]

    @property
    def data(self) -> memoryview:
        if self.buffer is None:
            raise ValueError(f"pack {self.info.id} was released")
        return memoryview(self.buffer)[: self.size]

    def store(self, store: BlobStore) -> None:
        """Store the pack under its key (committing it, if staged), then :meth:`release` it.

        Tree packs are stored with a plain ``put`` (a local store keeps them in
        the page cache), data packs with :func:`put_buffer` (around it).
        """
        try:
            if self.staged is not None:
                if self.written is not None:
                    self.written.result()
                staged, self.staged = self.staged, None
                staged.commit(self.info.key)
            elif self.buffer is None:
                raise ValueError(f"pack {self.info.id} was released")
            elif self.info.type is BlobType.TREE:
                # through the page cache: the next backup reads them back as its parent
                store.put(self.info.key, self.buffer[: self.size])
            else:
                put_buffer(store, self.info.key, self.buffer, self.size)
        finally:
            self.release()

    def release(self) -> None:
        """Give the buffer back, or drop an uncommitted staged pack (its id and entries stay)."""
        buf, self.buffer = self.buffer, None
        if buf is not None and self._buffers is not None:
            self._buffers.give(buf)
        staged, self.staged = self.staged, None
        if staged is not None:
            if self.written is not None:
                self.written.exception()
            staged.abort()


STAGE_FLUSH = 2 * 1024 * 1024


class PackWriter:
    """Encrypts blobs into one pack at a time; not for concurrent use.

    Each blob is encrypted straight into a page-aligned buffer, and the
    trailer after them, so sealing copies nothing. Where the store can take
    a blob in pieces (``stage`` returns a :class:`StagedBlob`), two small
    buffers take turns: every ``STAGE_FLUSH`` bytes the whole pages of one
    are hashed and handed to an I/O thread (``io``, one thread, which may
    serve several writers; else the writer's own), which writes them out
    while blobs go into the other, so a pack being filled needs a few MiB
    whatever its size and the threads adding blobs never wait for the disk.
    Otherwise the whole pack is built in a buffer taken from ``buffers`` and
    stored when sealed (:func:`put_buffer`). :meth:`close` ends the writer.
    """

    def __init__(
        self,
        key: MasterKey,
        blob_type: BlobType,
        target_size: int,
        max_blob: int,
        buffers: PackBuffers | None = None,
        stage: Callable[[], StagedBlob | None] | None = None,
        io: ThreadPoolExecutor | None = None,
    ) -> None:
        self._key = key
        self._type = blob_type
        self._target = target_size
        self._max_blob = max_blob
        capacity = pack_capacity(target_size, max_blob)
        self._buffers = buffers if buffers is not None else PackBuffers(capacity)
        if self._buffers.size < capacity:
            raise ValueError(f"pack buffers of {self._buffers.size} bytes, {capacity} needed")
        self._stage = stage
        self._stage_bufs: list[mmap.mmap] = []
        self._writes: list[Future[None] | None] = [None, None]
        self._turn = 0
        self._io = io
        self._own_io = io is None
        self._staged: StagedBlob | None = None
        self._hasher = blake3.blake3()
        self._buf: mmap.mmap | None = None
        self._view: memoryview | None = None
        self._salt = b""
        self._aead: AESGCM | None = None
        self._pos = 0
        self._flushed = 0
        self._count = 0
        self._table = bytearray()
        """The blobs' entries, as the trailer stores them."""

    @property
    def empty(self) -> bool:
        return not self._count

    @property
    def full(self) -> bool:
        """The blobs and the table of the trailer reach the target size."""
        return self._pos + len(self._table) >= self._target

    def add(self, chunk_id: bytes, data: bytes | memoryview, raw_length: int, flags: int) -> int:
        """Append one blob; return its stored length."""
        if self._aead is None:
            self._start()
        assert self._aead is not None and self._view is not None
        nonce = counter_nonce(self._count)
        pos = self._pos
        at = pos - self._flushed
        length = NONCE_SIZE + len(data) + TAG_SIZE
        view = self._view
        trailer = 0 if self._staged else len(self._table) + ENTRY.size + BLOB_OVERHEAD + 4
        if at + length + trailer > len(view):
            raise ValueError(f"a blob of {len(data)} bytes does not fit in the pack's buffer")
        view[at : at + NONCE_SIZE] = nonce
        self._aead.encrypt_into(
            nonce, data, blob_aad(chunk_id, flags), view[at + NONCE_SIZE : at + length]
        )
        self._table += ENTRY.pack(chunk_id, pos, length, raw_length, flags)
        self._count += 1
        self._pos = pos + length
        if self._staged is not None and at + length >= STAGE_FLUSH:
            self._flush()
        return length

    def finish(self) -> FinishedPack:
        """Seal the pack; the writer then starts a new one."""
        assert self._aead is not None and self._view is not None and self._buf is not None
        nonce = counter_nonce(self._count)
        table = bytes(self._table)
        view = self._view
        staged = self._staged
        if staged is not None:
            sealed = self._aead.encrypt(nonce, table, TRAILER_AAD)
            self._emit(nonce + sealed + LENGTH.pack(NONCE_SIZE + len(sealed)))
            used = self._pos - self._flushed
            self._hasher.update(self._view[:used])
            written = self._write_out(used)
            info = PackInfo(self._hasher.hexdigest(), self._type, self._salt)
            finished = FinishedPack(info, None, self._pos, table, staged=staged, written=written)
            view = self._view
        else:
            pos = self._pos
            end = pos + NONCE_SIZE + len(table) + TAG_SIZE
            view[pos : pos + NONCE_SIZE] = nonce
            self._aead.encrypt_into(nonce, table, TRAILER_AAD, view[pos + NONCE_SIZE : end])
            LENGTH.pack_into(view, end, end - pos)
            size = end + LENGTH.size
            info = PackInfo(blake3.blake3(view[:size]).hexdigest(), self._type, self._salt)
            finished = FinishedPack(info, self._buf, size, table, self._buffers)
        view.release()
        self._reset()
        return finished

    def close(self) -> None:
        """Drop the pack being filled, if any, and end the I/O thread."""
        self.discard()
        if self._io is not None and self._own_io:
            self._io.shutdown(wait=True)
            self._io = None

    def discard(self) -> None:
        """Drop the pack being filled (and its staged part, its buffer)."""
        if self._staged is not None:
            staged = self._staged
            for write in self._writes:
                if write is not None:
                    write.exception()
            self._writes = [None, None]
            staged.abort()
        elif self._buf is not None:
            if self._view is not None:
                self._view.release()
            self._buffers.give(self._buf)
        self._reset()

    def _reset(self) -> None:
        if self._staged is None:
            self._buf = None
        self._staged = None
        self._view = self._aead = None
        self._table = bytearray()
        self._count = 0
        self._pos = self._flushed = 0

    def _start(self) -> None:
        self._salt = os.urandom(SALT_SIZE)
        self._aead = self._key.subkey(self._salt)
        self._staged = self._stage() if self._stage is not None else None
        if self._staged is not None:
            if not self._stage_bufs:
                size = page_round(STAGE_FLUSH + self._max_blob + 2 * BLOB_OVERHEAD) + PAGE
                self._stage_bufs = [mmap.mmap(-1, size), mmap.mmap(-1, size)]
                if self._io is None:
                    self._io = ThreadPoolExecutor(1, thread_name_prefix="haprotect-pack")
            self._wait_for(self._turn)
            self._buf = self._stage_bufs[self._turn]
            self._hasher = blake3.blake3()
        else:
            self._buf = self._buffers.take()
        self._view = memoryview(self._buf)
        self._view[:HEADER_SIZE] = HEADER.pack(PACK_MAGIC, PACK_VERSION, self._type) + self._salt
        self._pos = HEADER_SIZE
        self._flushed = 0

    def _flush(self) -> None:
        """Hand the whole pages of this buffer to the I/O thread; go on in the other one."""
        assert self._staged is not None and self._view is not None
        view = self._view
        used = self._pos - self._flushed
        whole = used - used % PAGE
        self._hasher.update(view[:whole])
        self._write_out(whole)
        self._turn ^= 1
        self._wait_for(self._turn)
        self._buf = self._stage_bufs[self._turn]
        nxt = memoryview(self._buf)
        nxt[: used - whole] = view[whole:used]
        view.release()
        self._view = nxt
        self._flushed += whole

    def _write_out(self, length: int) -> Future[None]:
        """Write the first ``length`` bytes of this turn's buffer out, on the I/O thread."""
        assert self._io is not None and self._staged is not None and self._buf is not None
        write = self._io.submit(self._staged.write, self._buf, length)
        self._writes[self._turn] = write
        return write

    def _wait_for(self, turn: int) -> None:
        """Wait until the buffer of ``turn`` is written out (raising its failure)."""
        write, self._writes[turn] = self._writes[turn], None
        if write is not None:
            write.result()

    def _emit(self, data: bytes) -> None:
        """Append ``data`` after the blobs, writing out whole pages when the buffer fills."""
        assert self._view is not None
        view = memoryview(data)
        while view:
            at = self._pos - self._flushed
            room = len(self._view) - PAGE - at
            if room <= 0:
                self._flush()
                continue
            piece = view[:room]
            self._view[at : at + len(piece)] = piece
            self._pos += len(piece)
            view = view[len(piece) :]
