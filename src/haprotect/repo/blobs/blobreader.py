"""Reading blobs back: locate in the index, fetch, decrypt, decompress, verify.

Every blob read is verified: AES-GCM authenticates it (bound to its chunk id
and flags), and its id is recomputed from the plaintext. A failure names the
pack. Reads of neighbouring blobs of one pack can be merged into one ranged
read (:meth:`BlobReader.read_range`).
"""

from __future__ import annotations

import mmap
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import BlobLocation, Locator
from haprotect.repo.format.pack import PackInfo, open_blob
from haprotect.storage.base import BlobNotFound, BlobStore, get_range_into

_CACHED_KEYS = 256

T = TypeVar("T")
R = TypeVar("R")


class BlobReader:
    """Reads and verifies blobs located through an index, for restore, check and prune.

    Keeps the AES-GCM key of the most recently read packs, so neighbouring reads
    need not derive it again; safe to share between threads.
    """

    def __init__(self, store: BlobStore, key: MasterKey, index: Locator) -> None:
        self.store = store
        self.key = key
        self.index = index
        self._aeads: OrderedDict[str, AESGCM] = OrderedDict()
        self._lock = threading.Lock()

    def aead(self, pack: PackInfo) -> AESGCM:
        with self._lock:
            aead = self._aeads.get(pack.id)
            if aead is not None:
                self._aeads.move_to_end(pack.id)
                return aead
        aead = self.key.subkey(pack.salt)
        with self._lock:
            self._aeads[pack.id] = aead
            if len(self._aeads) > _CACHED_KEYS:
                self._aeads.popitem(last=False)
        return aead

    def locate(self, chunk_id: bytes, what: str = "") -> BlobLocation:
        location = self.index.lookup(chunk_id)
        if location is None:
            raise IntegrityError(
                f"chunk {chunk_id.hex()[:16]}{' of ' + what if what else ''} is not in the index",
                hint="run `haprotect check`; the pack that held it may be lost",
            )
        return location

    def read_range(self, pack: PackInfo, start: int, length: int) -> bytes:
        return _whole(pack, length, lambda: self.store.get_range(pack.key, start, length))

    def read_range_into(
        self, pack: PackInfo, start: int, length: int, buffer: mmap.mmap
    ) -> memoryview:
        """Like :meth:`read_range`, read into ``buffer`` (``length`` and two pages)."""
        return _whole(
            pack, length, lambda: get_range_into(self.store, pack.key, start, length, buffer)
        )

    def read_available_into(
        self, pack: PackInfo, start: int, length: int, buffer: mmap.mmap
    ) -> memoryview:
        """Like :meth:`read_range_into`, but a pack cut short gives what it holds.

        A missing pack raises :class:`~haprotect.storage.base.BlobNotFound`.
        """
        return get_range_into(self.store, pack.key, start, length, buffer)

    def open(self, location: BlobLocation, chunk_id: bytes, stored: bytes | memoryview) -> bytes:
        pack = location.pack
        return open_blob(
            self.aead(pack),
            self.key,
            stored,
            chunk_id,
            location.flags,
            location.raw_length,
            pack.id,
        )

    def read(self, chunk_id: bytes) -> bytes:
        """The plaintext of one chunk, verified."""
        location = self.locate(chunk_id)
        stored = self.read_range(location.pack, location.offset, location.length)
        return self.open(location, chunk_id, stored)


def prefetch(fn: Callable[[T], R], items: Iterable[T], depth: int = 16) -> Iterator[R]:
    """``map(fn, items)`` computed up to ``depth`` items ahead on threads, in order."""
    with ThreadPoolExecutor(max_workers=min(depth, 8)) as pool:
        window: list[Future[R]] = []
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) >= depth:
                yield window.pop(0).result()
        for future in window:
            yield future.result()


_Read = TypeVar("_Read", bytes, memoryview)


def _whole(pack: PackInfo, length: int, read: Callable[[], _Read]) -> _Read:
    """What ``read`` returns from ``pack``, as an integrity error when missing or short."""
    try:
        data = read()
    except BlobNotFound:
        raise IntegrityError(f"pack {pack.id} is missing", hint="run `haprotect check`") from None
    if len(data) != length:
        raise IntegrityError(f"pack {pack.id} is truncated", hint="run `haprotect check`")
    return data
