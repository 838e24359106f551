"""The repository: the one entry point to create, open, back up into and restore from.

A repository lives in any :class:`~haprotect.storage.base.BlobStore`::

    config                  plain JSON: format, version, chunker and pack settings
    keys/<id>               key files: the master key under a passphrase
    data/<id[:2]>/<id>      packs of encrypted chunks (data or tree)
    index/<id>              which chunk is where, written after its packs
    snapshots/<id>          one per backup, written after all it needs
    cache/snapshots         each snapshot's time, host and paths, to find a parent
    locks/<id>              who is using the repository (plain JSON)

Backup, restore, forget and check take a shared lock, prune an exclusive
one (:mod:`haprotect.repo.lock`). The format is specified in
docs/design/repository-format.md; the commands in docs/repository.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import tzinfo
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from haprotect.errors import UsageError
from haprotect.model.progress import Phase
from haprotect.model.snapshot import JSONValue, NodeType, RestoreStats, Snapshot
from haprotect.redact import display_url
from haprotect.repo.blobs.blobreader import BlobReader, prefetch
from haprotect.repo.errors import IntegrityError, RepositoryExists
from haprotect.repo.format.config import CONFIG_KEY, ChunkerParams, MiB, RepoConfig
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.index import Index
from haprotect.repo.format.indexset import IndexSet, index_names, index_unlisted, load_index_set
from haprotect.repo.format.keysealing import KdfParams, new_key_file
from haprotect.repo.format.pack import DATA_PREFIX, PackEntry, PackInfo, pack_key, read_pack
from haprotect.repo.format.snapshots import (
    SNAPSHOTS_PREFIX,
    list_snapshots,
    load_snapshot,
    resolve_id,
)
from haprotect.repo.format.summaries import Loader, SnapshotSummaries
from haprotect.repo.format.tree import LostChunk, NodeStream, decode_stream
from haprotect.repo.keyopening import KeyOpening, OpenedKey, start_opening
from haprotect.repo.lock import GuardedStore, HeldLock, Locker, LockStatus
from haprotect.repo.maintenance.retention import (
    DEFAULT_GROUP_BY,
    Group,
    KeepPolicy,
    apply_policy,
    select,
)
from haprotect.repo.progress import ProgressMeter, ProgressSink
from haprotect.storage.base import BlobInfo, BlobStore, StorageError

if TYPE_CHECKING:
    # Imported where used: a backup needs none of them (and starts sooner), and
    # opening a repository needs not even the backup's (see Repository.backup).
    from haprotect.repo.backup.options import BackupOptions
    from haprotect.repo.copy.copier import CopyReport
    from haprotect.repo.maintenance.check import CheckReport, Subset
    from haprotect.repo.maintenance.prune import PruneReport
    from haprotect.repo.maintenance.pruneoptions import PruneOptions
    from haprotect.repo.maintenance.repairindex import IndexRepair
    from haprotect.repo.maintenance.repairsnapshots import SnapshotRepair
    from haprotect.repo.maintenance.stats import RepoStats
    from haprotect.repo.restore.options import RestoreOptions
    from haprotect.repo.restore.processes import RestoreParts


class Repository:
    """A repository of deduplicated, compressed, encrypted snapshots in a blob store.

    Made by :meth:`init`, opened by :meth:`open` (or
    :func:`haprotect.repo.open_repository`, which starts deriving the key
    before the rest is imported); every use that writes or reads the data
    waits for the key and takes a lock (shared, or exclusive for prune and
    repairs). The format is docs/design/repository-format.md.
    """

    def __init__(
        self,
        store: BlobStore,
        config: RepoConfig,
        opened: OpenedKey | KeyOpening,
        *,
        locker: Locker | None = None,
        lenient_index: bool = False,
    ) -> None:
        """A repository whose key is ``opened``, or being opened in the background."""
        self.store = store
        self.config = config
        self._opening = opened if isinstance(opened, KeyOpening) else None
        if isinstance(opened, OpenedKey):
            self._take(opened)
        self.locker = locker or Locker(store)
        """Takes the locks; replace it to inject a clock or other staleness limits."""
        self.lock_wait = 0.0
        """Seconds to keep trying while another process holds a conflicting lock."""
        self._lenient = lenient_index
        self.snapshot_loader: Loader | None = None
        """Loads a snapshot by its full id when a backup looks for its parent (the
        store's by default); replace it to count or delay the loads."""

    def _take(self, opened: OpenedKey) -> None:
        self._master_key = opened.key
        self._indexes = opened.indexes
        self._blob_reader = BlobReader(self.store, opened.key, opened.indexes.for_reading)

    def _key_opened(self) -> None:
        """Wait for the key being opened in the background (raising a wrong passphrase)."""
        if self._opening is not None:
            self._take(self._opening.result())
            self._opening = None

    @property
    def _key(self) -> MasterKey:
        self._key_opened()
        return self._master_key

    @property
    def _index(self) -> Index:
        self._key_opened()
        return self._indexes.index

    @property
    def _reader(self) -> BlobReader:
        self._key_opened()
        return self._blob_reader

    @property
    def index_damage(self) -> dict[str, str]:
        """Index blobs that could not be read (skipped), with what is wrong with each."""
        self._key_opened()
        return self._indexes.damaged

    @classmethod
    def init(
        cls,
        store: BlobStore,
        passphrase: str,
        *,
        kdf: KdfParams | None = None,
        chunker: ChunkerParams | None = None,
        pack_size: int = 16 * MiB,
        compression_level: int = 3,
    ) -> Repository:
        """Create a repository in an empty store; the config is written last."""
        if store.exists(CONFIG_KEY):
            raise RepositoryExists(
                f"{display_url(store.url)} already holds a repository",
                hint="open it instead of creating it",
            )
        config = RepoConfig.new(chunker=chunker, pack_size=pack_size, level=compression_level)
        key = MasterKey.generate()
        name, blob = new_key_file(key, config.id, passphrase, kdf or KdfParams())
        store.put(name, blob)
        store.put(CONFIG_KEY, config.dump(key))
        return cls(store, config, OpenedKey(key, IndexSet()))

    @classmethod
    def open(
        cls,
        store: BlobStore,
        passphrase: str,
        *,
        lenient_index: bool = False,
        background: bool = False,
    ) -> Repository:
        """Open a repository: check its version, open the key with a key file, load the index.

        A damaged index blob is skipped and recorded in :attr:`index_damage`;
        unless ``lenient_index`` (for check, which reports it), a warning is
        logged and the packs no intact index blob names are indexed from their
        own trailers, for reading only: restores and checks find their chunks,
        backups do not deduplicate against them.
        With ``background`` the key is derived and the index loaded in a
        background thread: ``open`` returns once the config is read, the
        first use of the key waits for it and raises a wrong passphrase
        there; a backup walks the file system meanwhile.
        """
        config, opened = start_opening(
            store, passphrase, lenient_index=lenient_index, background=background
        )
        return cls(store, config, opened, lenient_index=lenient_index)

    @property
    def url(self) -> str:
        return self.store.url

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def index(self) -> Index:
        return self._index

    def add_key(self, passphrase: str, kdf: KdfParams | None = None) -> str:
        """Store one more key file for ``passphrase``; return its key."""
        name, blob = new_key_file(self._key, self.config.id, passphrase, kdf or KdfParams())
        self.store.put(name, blob)
        return name

    def backup(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        tags: Sequence[str] = (),
        metadata: Mapping[str, JSONValue] | None = None,
        host: str | None = None,
        parent: str | None = None,
        use_parent: bool = True,
        on_progress: ProgressSink | None = None,
        options: BackupOptions | None = None,
        record_as: str | None = None,
    ) -> Snapshot:
        """Back up ``paths`` into a new snapshot.

        The parent (whose unchanged files are not read again) is ``parent``,
        else the latest snapshot of the same host and paths, unless
        ``use_parent`` is false. ``record_as`` records the one path given
        under that absolute path instead (as its ``paths`` and in its tree):
        a staging directory that differs every run keeps one name.
        """
        # imported here: an open() in the background derives the key meanwhile
        from haprotect.repo.backup.run import run_backup

        return run_backup(
            self,
            paths,
            tags=tags,
            metadata=metadata,
            host=host,
            parent=parent,
            use_parent=use_parent,
            on_progress=on_progress,
            options=options,
            record_as=record_as,
        )

    def parent_for(
        self, host: str, paths: Sequence[str], parent: str | None = None
    ) -> Snapshot | None:
        """The snapshot a backup of ``paths`` on ``host`` is a delta of: ``parent`` if given,
        else the latest of the same host and paths."""
        if parent is not None:
            return self.snapshot(parent)
        return self.summaries().latest(host, paths)

    def summaries(self) -> SnapshotSummaries:
        """The snapshots' summaries (``cache/snapshots``): a parent found without
        loading every snapshot, and the new snapshot recorded in them."""
        return SnapshotSummaries(self.store, self._key, self.snapshot_loader)

    @property
    def key(self) -> MasterKey:
        """The master key (waiting for it to be opened, raising a wrong passphrase)."""
        return self._key

    def snapshots(self) -> list[Snapshot]:
        """Every complete snapshot, oldest first."""
        return list_snapshots(self.store, self._key)

    def snapshot(self, snapshot_id: str) -> Snapshot:
        """The snapshot whose id is or starts with ``snapshot_id``."""
        return load_snapshot(self.store, self._key, resolve_id(self.store, snapshot_id))

    def forget(self, *snapshot_ids: str) -> list[str]:
        """Remove snapshot blobs (their data stays until a prune); return their full ids."""
        ids = [resolve_id(self.store, i) for i in snapshot_ids]
        if ids:
            with self.lock(operation="forget") as held:
                store = GuardedStore(self.store, held)
                for snapshot_id in dict.fromkeys(ids):
                    store.delete(SNAPSHOTS_PREFIX + snapshot_id)
        return ids

    def apply_retention(
        self,
        policy: KeepPolicy,
        group_by: Sequence[str] = DEFAULT_GROUP_BY,
        *,
        hosts: Sequence[str] = (),
        tags: Sequence[str] = (),
        dry_run: bool = False,
        tz: tzinfo | None = None,
    ) -> list[Group]:
        """Judge the snapshots (of ``hosts`` with ``tags``, if given) by ``policy``.

        Unless ``dry_run``, the snapshots no rule keeps are forgotten. Their
        data stays until :meth:`prune`.
        """
        chosen = select(self.snapshots(), hosts=hosts, tags=tags)
        groups = apply_policy(chosen, policy, group_by, tz=tz)
        if not dry_run:
            self.forget(*(s.id for g in groups for s in g.removed))
        return groups

    def nodes(self, snapshot: Snapshot) -> NodeStream:
        """The nodes of a snapshot in canonical order, streamed."""
        return read_tree(self._reader, snapshot)

    def restore(
        self,
        snapshot_id: str,
        target: str | os.PathLike[str],
        include: Sequence[str] | None = None,
        on_progress: ProgressSink | None = None,
        options: RestoreOptions | None = None,
        *,
        lock: bool = True,
        parts: RestoreParts | None = None,
    ) -> RestoreStats:
        """Restore a snapshot, or the paths in ``include`` and below, into ``target``.

        Damage costs only what it holds: a lost data chunk the bytes of the
        files that use it, a lost tree chunk the records in it (each gap is
        one of the returned errors). An ``include`` the snapshot does not
        hold is a :class:`UsageError`, raised before anything is written.
        ``lock=False`` takes no lock (for
        read-only access to the store). ``parts``: the calls and classes the
        restore uses (the production's by default).
        """
        with self._maybe_lock(lock, "restore"):
            snapshot = self.snapshot(snapshot_id)
            if index_unlisted(self.store, self._key, self._indexes):
                self._blob_reader.index = self._indexes.for_reading
            meter = ProgressMeter(Phase.RESTORE, on_progress)
            unmatched = {p.strip("/") for p in include or ()} - {""}
            if meter.active or unmatched:
                files = nbytes = 0
                for node in read_tree(self._reader, snapshot, lenient=True):
                    if unmatched:
                        # in or below: a directory's record may be lost with its tree
                        # chunk while the records below it are read
                        unmatched = {p for p in unmatched if not _within(node.path, p)}
                    if node.type is NodeType.FILE:
                        files += 1
                        nbytes += node.size
                meter.files_total, meter.bytes_total = files, nbytes
            if unmatched:
                shown = ", ".join(f"/{p}" for p in sorted(unmatched))
                raise UsageError(
                    f"--include {shown}: snapshot {snapshot.short_id} holds no such path",
                    hint=f"its paths: {', '.join(snapshot.paths)}",
                )
            from haprotect.repo.restore import processes
            from haprotect.repo.restore.options import RestoreOptions

            return processes.restore(
                self._reader,
                snapshot.id,
                partial(read_tree, snapshot=snapshot, lenient=True),
                Path(target),
                include,
                options or RestoreOptions(),
                meter,
                parts,
            )

    def lock(self, *, exclusive: bool = False, operation: str = "") -> HeldLock:
        """Take a lock (waiting up to :attr:`lock_wait`); use it as a context manager.

        Only with the passphrase proven: a repository opened in the background
        waits for its key first, so a wrong passphrase writes nothing.
        """
        self._key_opened()
        return self.locker.acquire(exclusive=exclusive, operation=operation, wait=self.lock_wait)

    @contextmanager
    def _maybe_lock(self, lock: bool, operation: str) -> Iterator[HeldLock | None]:
        """A shared lock (and an index reloaded if a prune ran), or nothing."""
        if not lock:
            yield None
            return
        with self.lock(operation=operation) as held:
            self.sync_index()
            yield held

    def locks(self) -> list[LockStatus]:
        self._key_opened()
        return self.locker.locks()

    def unlock(self, *, remove_all: bool = False) -> list[LockStatus]:
        """Remove the stale locks, or every lock with ``remove_all``; return those removed."""
        self._key_opened()
        return self.locker.remove_all() if remove_all else self.locker.remove_stale()

    def prune(
        self,
        options: PruneOptions | None = None,
        on_progress: ProgressSink | None = None,
        *,
        forgetting: Sequence[str] = (),
    ) -> PruneReport:
        """Delete and repack packs so that only what the snapshots use remains.

        ``forgetting``: snapshots to treat as already forgotten (to preview a
        forget and prune together with ``dry_run``).
        """
        from haprotect.repo.maintenance.prune import Pruner, all_snapshots
        from haprotect.repo.maintenance.pruneoptions import PruneOptions

        opts = options or PruneOptions()
        meter = ProgressMeter(Phase.PRUNE, on_progress)
        with self.lock(exclusive=True, operation="prune") as held:
            store = GuardedStore(self.store, held)
            pruner = Pruner(store, self._key, self.config, meter, opts)
            gone = set(forgetting)
            every = all_snapshots(self.store, self._key)
            plan = pruner.plan([s for s in every if s.id not in gone])
            if opts.dry_run:
                return plan.report(dry_run=True)
            report = pruner.execute(plan)
            self.reload_index()
        return report

    def check(
        self,
        *,
        read_data: bool = False,
        subset: Subset | None = None,
        on_progress: ProgressSink | None = None,
        lock: bool = True,
    ) -> CheckReport:
        """Verify the repository's structure (and with ``read_data`` its packs).

        ``lock=False`` takes no lock (read-only access; a concurrent prune may
        then cause false alarms).
        """
        meter = ProgressMeter(Phase.CHECK, on_progress)
        with self._maybe_lock(lock, "check") as held:
            removed = held.removed_stale if held is not None else ()
            from haprotect.repo.maintenance.check import Checker

            return Checker(
                self.store,
                self._key,
                self.locker,
                meter,
                read_data=read_data,
                subset=subset,
                removed_locks=removed,
            ).run()

    def repair_index(
        self,
        *,
        dry_run: bool = False,
        read_data: bool = False,
        on_progress: ProgressSink | None = None,
    ) -> IndexRepair:
        """Rebuild the index from the packs' own trailers, salvaging damaged packs
        (exclusive lock); ``read_data`` reads every pack to find damage inside."""
        from haprotect.repo.maintenance.repairindex import repair_index

        meter = ProgressMeter(Phase.REPAIR, on_progress)
        with self.lock(exclusive=True, operation="repair index") as held:
            store = GuardedStore(self.store, held)
            report = repair_index(
                store, self._key, self.config, meter, dry_run=dry_run, read_data=read_data
            )
            if report.changed and not dry_run:
                self.reload_index()
        return report

    def repair_snapshots(
        self, snapshot_ids: Sequence[str] = (), *, dry_run: bool = False, forget: bool = False
    ) -> list[SnapshotRepair]:
        """Rewrite the snapshots (all, or those given) that reference lost data; with
        ``forget`` remove the originals, and snapshot blobs that cannot be read."""
        from haprotect.repo.errors import IntegrityError
        from haprotect.repo.maintenance.repairsnapshots import SnapshotRepairer, load_chosen

        with self.lock(operation="repair snapshots") as held:
            self.reload_index()
            if self.index_damage:
                shown = display_url(self.url)
                raise IntegrityError(
                    f"the index of {shown} is damaged ({len(self.index_damage)} index blobs "
                    "cannot be read); repair snapshots needs it whole",
                    hint=f"run `haprotect repo repair index {shown}` first",
                )
            ids = [resolve_id(self.store, i) for i in snapshot_ids]
            snapshots, unreadable = load_chosen(self.store, self._key, ids)
            store = GuardedStore(self.store, held)
            reader = BlobReader(self.store, self._key, self._index)
            repairer = SnapshotRepairer(store, reader, self._index, self.config)
            return repairer.repair(snapshots, unreadable, dry_run=dry_run, forget=forget)

    def copy_to(
        self,
        target: Repository,
        snapshots: Sequence[str] | None = None,
        *,
        dry_run: bool = False,
        on_progress: ProgressSink | None = None,
    ) -> CopyReport:
        """Copy ``snapshots`` (all when None) that ``target`` lacks into it (repo/copy/)."""
        from haprotect.repo.copy.copier import copy_snapshots

        return copy_snapshots(self, target, snapshots, dry_run=dry_run, on_progress=on_progress)

    def stats(self) -> RepoStats:
        from haprotect.repo.maintenance.stats import repo_stats

        return repo_stats(self.store, self._index, self.snapshots())

    def read_blob(self, chunk_id: bytes) -> bytes:
        """The verified plaintext of one chunk."""
        return self._reader.read(chunk_id)

    def list_packs(self) -> Iterator[BlobInfo]:
        """Every pack stored, indexed or not."""
        return self.store.list(DATA_PREFIX)

    def read_pack(self, pack_id: str) -> tuple[PackInfo, list[PackEntry]]:
        """A whole pack, checked against its id, and the blobs its trailer lists."""
        return read_pack(self._key, self.store.get(pack_key(pack_id)), pack_id)

    def reload_index(self) -> Index:
        """Read the index blobs again (after another writer added some)."""
        key = self._key
        indexes = load_index_set(self.store, key, strict=False, recover=not self._lenient)
        self._take(OpenedKey(key, indexes))
        return self._index

    def sync_index(self) -> None:
        """Reload the index if its blobs changed since it was loaded: a prune replaced
        some, or another writer added some (whose snapshots may be a backup's parent)."""
        self._key_opened()
        if self._indexes.names != index_names(self.store):
            self.reload_index()


def _within(path: str, include: str) -> bool:
    """``path`` is ``include`` or lies below it."""
    return path == include or path.startswith(include + "/")


def read_tree(reader: BlobReader, snapshot: Snapshot, *, lenient: bool = False) -> NodeStream:
    """The nodes of a snapshot in canonical order, streamed through ``reader``.

    ``lenient``: a tree chunk that cannot be read costs the records it held,
    listed in the stream's ``gaps``, instead of raising.
    """
    ids = [bytes.fromhex(i) for i in snapshot.tree]
    if not lenient:
        return decode_stream(prefetch(reader.read, ids))

    def read(chunk_id: bytes) -> bytes | LostChunk:
        try:
            return reader.read(chunk_id)
        except (IntegrityError, StorageError) as exc:
            return LostChunk(chunk_id.hex(), exc.message)

    return decode_stream(prefetch(read, ids), lenient=True)
