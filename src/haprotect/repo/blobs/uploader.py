"""Storing finished packs concurrently, then the index blobs that name them.

At most ``max_pending`` packs wait or travel at once, so memory stays
bounded: a thread that finishes a pack waits in :meth:`Uploader.submit` when
the limit is reached. When a pack is stored its entries join the pending
index; :meth:`flush_index` writes them as one index blob once enough have
gathered, and :meth:`finish` writes the rest after the last pack. So an
index blob only ever names packs that are already stored.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from haprotect.repo.blobs.packwriter import FinishedPack
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index, write_index
from haprotect.repo.format.pack import DATA_PREFIX, ENTRY, PackInfo
from haprotect.storage.base import BlobStore, StagedBlob, stage

INDEX_FLUSH_ENTRIES = 50_000


class Uploader:
    """Stores a writer's finished packs on its threads, and then the index blobs naming them."""

    def __init__(
        self, store: BlobStore, key: MasterKey, *, threads: int = 4, max_pending: int = 2
    ) -> None:
        self._store = store
        self._key = key
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="haprotect-up")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._lock = threading.Lock()
        self._stored: list[tuple[PackInfo, bytes]] = []
        self._stored_entries = 0
        self._futures: set[Future[None]] = set()
        self._error: BaseException | None = None
        self.packs: list[tuple[PackInfo, bytes]] = []
        """Each pack stored, with its entry table."""
        self.bytes_stored = 0

    def stage(self) -> StagedBlob | None:
        """A pack to write out piece by piece, if the store can take one."""
        return stage(self._store, DATA_PREFIX.rstrip("/"))

    def reserve(self) -> None:
        """Wait for room for one more pack; :meth:`submit` it with ``reserved=True``.

        Reserving before sealing a pack keeps the sealed copies in memory to
        ``max_pending``: a thread that waits holds no copy yet.
        """
        self._slots.acquire()

    def release(self) -> None:
        """Give back a reservation that will not be used."""
        self._slots.release()

    def submit(self, pack: FinishedPack, *, reserved: bool = False) -> None:
        """Queue ``pack`` for storing; waits while too many are in flight."""
        if not reserved:
            self._slots.acquire()
        if self._error is not None:
            pack.release()
            self._slots.release()
            return
        # the pack travels in a list the upload empties, so that its bytes are
        # freed before its slot is, not when the pool drops the task
        future = self._pool.submit(self._put, [pack])
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _put(self, holder: list[FinishedPack]) -> None:
        pack = holder.pop()
        info, table, size = pack.info, pack.table, pack.size
        try:
            pack.store(self._store)
        except BaseException as exc:
            with self._lock:
                self._error = self._error or exc
            raise
        finally:
            del pack
            self._slots.release()
        with self._lock:
            self._stored.append((info, table))
            self._stored_entries += len(table) // ENTRY.size
            self.packs.append((info, table))
            self.bytes_stored += size

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def check(self) -> None:
        """Raise the first storage failure, if any."""
        if self._error is not None:
            raise self._error

    def flush_index(self, *, force: bool = False) -> None:
        if not force and self._stored_entries < INDEX_FLUSH_ENTRIES:
            return  # read without the lock: called once per file, it must cost nothing
        with self._lock:
            if not self._stored or (not force and self._stored_entries < INDEX_FLUSH_ENTRIES):
                return
            batch, self._stored, self._stored_entries = self._stored, [], 0
        size = write_index(self._store, self._key, batch)
        with self._lock:
            self.bytes_stored += size

    def finish(self, index: Index) -> None:
        """Wait for every pack, write the last index blob, add all to ``index``."""
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                break
            for future in pending:
                future.exception()
        self._pool.shutdown(wait=True)
        self.check()
        self.flush_index(force=True)
        for info, table in self.packs:
            index.add_table(info, table)

    def abort(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
