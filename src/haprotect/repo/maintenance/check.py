"""Check: is the repository whole, and what does each problem affect?

The structural check (always):

* key files are well-formed (opening already verified the config's MAC);
* every index blob reads and authenticates;
* every pack an index lists exists, has exactly the size the index implies,
  and its trailer lists the same blobs (one ranged read per pack);
* every snapshot reads, its tree reads, every chunk it uses (tree and
  file content) is in the index, and every path in it passes the test a
  restore makes (:mod:`haprotect.repo.maintenance.pathjudge`);
* packs no index lists are *info* (garbage of an interrupted backup or
  prune, removed by the next prune; their trailers are read, so that the
  chunks a damaged index blob listed are found), stale and unreadable
  locks too; files whose names are no blob's (:mod:`haprotect.repo.format.names`)
  are warnings.

With ``read_data`` every pack (or a subset: ``N%`` at random, or part
``N/M`` of the packs split by id) is read whole and each blob is
authenticated, decompressed and hashed against its id.

Each error names what it affects: the chunks that can no longer be read
anywhere (no intact copy in another pack) are traced to the snapshots and
files that use them. The result is a :class:`CheckReport`; nothing raises
for damage, so one run reports everything it finds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from haprotect.model.snapshot import Snapshot
from haprotect.repo.blobs.blobreader import BlobReader
from haprotect.repo.errors import (
    IntegrityError,
    RepositoryError,
    SnapshotNotFound,
    UnsupportedVersion,
)
from haprotect.repo.format.crypto import MasterKey
from haprotect.repo.format.indexset import IndexedPack, load_index_set
from haprotect.repo.format.keyfile import KEYS_PREFIX, parse_key_file
from haprotect.repo.format.names import DATA, SET_ASIDE_SUFFIX, flat_id, list_folder
from haprotect.repo.format.packindex import read_pack_tables
from haprotect.repo.format.snapshots import load_snapshot, snapshot_ids
from haprotect.repo.lock import Locker, LockStatus
from haprotect.repo.maintenance.packcheck import PackProblem, Subset, check_data, check_structure
from haprotect.repo.maintenance.reachable import find_users, scan
from haprotect.repo.progress import ProgressMeter
from haprotect.storage.base import BlobNotFound, BlobStore, PermanentStorageError

SHOWN_FILES = 10
_THREADS = 8
_READ_THREADS = 4


class Severity(StrEnum):
    """How bad a finding is: only errors make a check fail."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem check found, with the pack, snapshots and files it affects."""

    severity: Severity
    kind: str
    message: str
    pack: str | None = None
    snapshots: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    more_files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "kind": self.kind,
            "message": self.message,
            "pack": self.pack,
            "snapshots": list(self.snapshots),
            "files": list(self.files),
            "more_files": self.more_files,
        }


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What a check found and how much it read; ``ok`` when no finding is an error."""

    findings: tuple[Finding, ...]
    snapshots: int = 0
    index_blobs: int = 0
    packs: int = 0
    packs_read: int = 0
    bytes_read: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "snapshots": self.snapshots,
            "index_blobs": self.index_blobs,
            "packs": self.packs,
            "packs_read": self.packs_read,
            "bytes_read": self.bytes_read,
            "findings": [f.to_json() for f in self.findings],
        }


@dataclass(slots=True)
class _Pending:
    severity: Severity
    kind: str
    message: str
    pack: str | None = None
    lost: frozenset[bytes] = frozenset()
    snapshots: tuple[str, ...] = ()
    needed: frozenset[bytes] = frozenset()
    """Chunks whose snapshots are named even when the chunks are not lost (unindexed)."""


@dataclass(slots=True)
class _State:
    pending: list[_Pending] = field(default_factory=list)
    bad: set[tuple[str, bytes]] = field(default_factory=set)

    def add(self, severity: Severity, kind: str, message: str, **more: Any) -> None:
        self.pending.append(_Pending(severity, kind, message, **more))


class Checker:
    """Runs one check of a repository under the lock the caller holds.

    Reads pack data only with ``read_data`` or a ``subset``; locks removed
    before the check are reported with its findings.
    """

    def __init__(
        self,
        store: BlobStore,
        key: MasterKey,
        locker: Locker,
        meter: ProgressMeter,
        *,
        read_data: bool = False,
        subset: Subset | None = None,
        removed_locks: Sequence[LockStatus] = (),
    ) -> None:
        self._removed_locks = removed_locks
        self._store = store
        self._key = key
        self._locker = locker
        self._meter = meter
        self._read_data = read_data or subset is not None
        self._subset = subset or Subset()

    def run(self) -> CheckReport:
        state = _State()
        self._keys(state)
        self._locks(state)
        self._meter.update(0, 0, "reading the index", force=True)
        indexed = load_index_set(self._store, self._key, strict=False, keep=True)
        for _, message in sorted(indexed.damaged.items()):
            state.add(
                Severity.ERROR,
                "damaged-index",
                f"{message}; the packs it lists are unindexed until "
                "`haprotect repo repair index` rebuilds the index from them (packs describe "
                "themselves)",
            )
        self._index_names(state, indexed.misnamed)
        packs = indexed.packs()
        data = list_folder(self._store, DATA)
        stored = data.blobs
        self._strays(state, data.strays)
        self._packs(state, packs, stored)
        recovered = self._orphans(state, packs, stored)
        packs_read = bytes_read = 0
        if self._read_data:
            packs_read, bytes_read = self._data(state, packs, stored)
        snapshots = self._snapshots(state)
        reading = indexed.index.copy() if recovered else indexed.index
        for info, entries in recovered.values():
            reading.add_pack(info, entries)
        reader = BlobReader(self._store, self._key, reading)
        self._meter.files_total = len(snapshots)
        reachable = scan(
            reader,
            snapshots,
            lambda n: self._meter.update(n, bytes_read, "reading snapshots"),
            judge_paths=True,
        )
        for snapshot_id, problem in sorted(reachable.problems.items()):
            state.add(
                Severity.ERROR,
                "damaged-tree",
                f"the tree of snapshot {snapshot_id[:8]} cannot be read: {problem}",
                snapshots=(snapshot_id,),
            )
        for snapshot_id, refused in sorted(reachable.refused.items()):
            state.add(
                Severity.ERROR,
                "refused-path",
                f"snapshot {snapshot_id[:8]} has {refused.count} "
                f"path{'s' * (refused.count != 1)} a restore refuses (first: {refused.first})",
                snapshots=(snapshot_id,),
            )
        used = reachable.chunks
        unindexed = frozenset(c for c in used if c not in indexed.index)
        if unindexed:
            found = sum(1 for c in unindexed if c in reading)
            where = (
                f"; {found} of them are in packs no index lists, which "
                "`haprotect repo repair index` indexes"
                if found
                else ""
            )
            state.add(
                Severity.ERROR,
                "missing-chunks",
                f"{len(unindexed)} chunks the snapshots use are in no index{where}",
                lost=unindexed,
                needed=unindexed,
            )
        findings = self._attribute(state, {**recovered, **packs}, stored, reader, snapshots, used)
        self._meter.finish(packs_read, bytes_read)
        return CheckReport(
            tuple(findings),
            snapshots=len(snapshots),
            index_blobs=len(indexed.names),
            packs=len(stored),
            packs_read=packs_read,
            bytes_read=bytes_read,
        )

    def _index_names(self, state: _State, misnamed: Iterable[str]) -> None:
        """An index blob is named by the hash of its bytes: one that is not was copied or
        renamed by hand (what it lists is still read: it is authenticated)."""
        for name in sorted(misnamed):
            state.add(
                Severity.WARNING,
                "misnamed-index",
                f"index blob {name} is not named by the hash of its bytes (a copy or a "
                "rename?); it is read all the same; `haprotect repo repair index` "
                "rebuilds the index without it",
            )

    def _strays(self, state: _State, data_strays: Sequence[str]) -> None:
        strays = list(data_strays)
        for prefix in ("index/", "snapshots/", "locks/"):
            strays.extend(list_folder(self._store, prefix).strays)
        for key in sorted(strays):
            if key.startswith(DATA) and key.endswith(SET_ASIDE_SUFFIX):
                state.add(
                    Severity.INFO,
                    "set-aside-pack",
                    f"{key} is a damaged pack that `repo repair index` set aside after "
                    "salvaging what could be read of it; delete it when no copy of it is needed",
                )
                continue
            state.add(
                Severity.WARNING,
                "stray-file",
                f"{key} is not a file haprotect writes (its name is no blob id); every command "
                "ignores it; remove it if it is not yours",
            )

    def _orphans(
        self, state: _State, packs: dict[str, IndexedPack], stored: dict[str, int]
    ) -> dict[str, IndexedPack]:
        """Report the packs no index lists; read their trailers (what they hold)."""
        orphans = {p: size for p, size in stored.items() if p not in packs}
        tables = read_pack_tables(self._store, self._key, orphans.items())
        for orphan in sorted(orphans):
            problem = tables.problems.get(orphan)
            state.add(
                Severity.INFO,
                "orphan-pack",
                f"pack {orphan} is in no index (left by an interrupted backup or prune, or "
                "listed by a damaged index blob); prune removes it"
                + (f"; its trailer cannot be read: {problem}" if problem else ""),
                pack=orphan,
            )
        return tables.packs

    def _keys(self, state: _State) -> None:
        for info in self._store.list(KEYS_PREFIX):
            try:
                parse_key_file(self._store.get(info.key), info.key)
            except BlobNotFound:
                continue
            except (RepositoryError, PermanentStorageError) as exc:
                if flat_id(KEYS_PREFIX, info.key) is None:
                    state.add(
                        Severity.WARNING,
                        "stray-file",
                        f"{info.key} is not a file haprotect writes and not a key file ({exc}); "
                        "every command ignores it; remove it if it is not yours",
                    )
                    continue
                state.add(
                    Severity.WARNING,
                    "damaged-key",
                    f"{exc}; its passphrase no longer opens the repository (others still do, "
                    "and the data is not affected); restore it from a copy of the repository, "
                    "or add a key for that passphrase and delete it",
                )

    def _locks(self, state: _State) -> None:
        for status in self._removed_locks:
            state.add(Severity.INFO, "stale-lock", f"removed {status.describe()}")
        for status in self._locker.locks():
            if status.newer:
                state.add(
                    Severity.WARNING,
                    "newer-lock",
                    f"{status.describe()}; it blocks every other lock; `haprotect repo unlock "
                    "--remove-all` removes it when no haprotect uses the repository",
                )
            elif status.stale is not None or status.problem is not None:
                state.add(
                    Severity.INFO,
                    "stale-lock",
                    f"{status.describe()}; `haprotect repo unlock` removes it",
                )

    def _packs(self, state: _State, packs: dict[str, IndexedPack], stored: dict[str, int]) -> None:
        listed = sorted(packs)
        present = [p for p in listed if p in stored]
        for pack_id in listed:
            if pack_id not in stored:
                entries = packs[pack_id][1]
                state.add(
                    Severity.ERROR,
                    "missing-pack",
                    f"pack {pack_id} is missing ({len(entries)} blobs listed in the index)",
                    pack=pack_id,
                    lost=frozenset(e.id for e in entries),
                )
        self._meter.files_total = len(present)

        def one(pack_id: str) -> PackProblem | None:
            info, entries = packs[pack_id]
            return check_structure(self._store, self._key, info, entries, stored[pack_id])

        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            for number, (pack_id, problem) in enumerate(
                zip(present, pool.map(one, present), strict=True), 1
            ):
                self._meter.update(number, 0, "checking packs")
                if problem is not None:
                    self._pack_problem(state, "damaged-pack", pack_id, problem)

    def _pack_problem(self, state: _State, kind: str, pack_id: str, problem: PackProblem) -> None:
        state.bad.update((pack_id, c) for c in problem.lost)
        state.add(Severity.ERROR, kind, problem.message, pack=pack_id, lost=problem.lost)

    def _data(
        self, state: _State, packs: dict[str, IndexedPack], stored: dict[str, int]
    ) -> tuple[int, int]:
        chosen = self._subset.select(p for p in packs if p in stored)
        meter = self._meter
        meter.files_total, meter.bytes_total = len(chosen), sum(stored[p] for p in chosen)
        nbytes = 0

        def one(pack_id: str) -> tuple[int, PackProblem | None]:
            info, entries = packs[pack_id]
            return check_data(self._store, self._key, info, entries)

        with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
            for number, (pack_id, (size, problem)) in enumerate(
                zip(chosen, pool.map(one, chosen), strict=True), 1
            ):
                nbytes += size
                meter.update(number, nbytes, "reading packs")
                if problem is not None:
                    self._pack_problem(state, "damaged-data", pack_id, problem)
        return len(chosen), nbytes

    def _snapshots(self, state: _State) -> list[Snapshot]:
        found: list[Snapshot] = []
        for snapshot_id in snapshot_ids(self._store):
            try:
                found.append(load_snapshot(self._store, self._key, snapshot_id))
            except SnapshotNotFound:
                continue
            except (IntegrityError, UnsupportedVersion, PermanentStorageError) as exc:
                state.add(
                    Severity.ERROR,
                    "damaged-snapshot",
                    f"snapshot {snapshot_id} cannot be read: {exc}; every command but check "
                    "skips it; `haprotect repo repair snapshots --forget` removes it",
                    snapshots=(snapshot_id,),
                )
        return sorted(found, key=lambda s: (s.time, s.id))

    def _attribute(
        self,
        state: _State,
        packs: dict[str, IndexedPack],
        stored: dict[str, int],
        reader: BlobReader,
        snapshots: Sequence[Snapshot],
        used: set[bytes],
    ) -> list[Finding]:
        """Turn pending findings into findings naming the snapshots and files they affect."""
        homes: dict[bytes, list[str]] = {}
        for pack_id, (_, entries) in packs.items():
            for e in entries:
                homes.setdefault(e.id, []).append(pack_id)

        def readable(chunk: bytes) -> bool:
            return any(p in stored and (p, chunk) not in state.bad for p in homes.get(chunk, ()))

        lost_by: list[frozenset[bytes]] = [
            frozenset(c for c in p.lost if c in used and not readable(c)) for p in state.pending
        ]
        wanted = set().union(*lost_by, *(p.needed for p in state.pending))
        users = find_users(reader, snapshots, wanted) if wanted else None
        findings: list[Finding] = []
        for pending, lost in zip(state.pending, lost_by, strict=True):
            names = set(pending.snapshots)
            files: list[str] = []
            if users is not None:
                for chunk in pending.needed:
                    names |= users.snapshots.get(chunk, set())
                for chunk in lost:
                    names |= users.snapshots.get(chunk, set())
                    files.extend(f"{s[:8]}:{path}" for s, path in users.files.get(chunk, ()))
            files = sorted(set(files))
            message, severity = pending.message, pending.severity
            if pending.kind == "missing-pack" and not lost:
                # nothing any snapshot needs is gone: only the index is out of date
                severity = Severity.WARNING
                message += (
                    "; no snapshot uses its chunks; `haprotect repo repair index` (or the next "
                    "prune) drops it from the index"
                )
            elif (pending.lost or pending.pack) and severity is Severity.ERROR:
                message += _affects(len(lost), len(names), len(files))
            findings.append(
                Finding(
                    severity,
                    pending.kind,
                    message,
                    pending.pack,
                    tuple(sorted(names)),
                    tuple(files[:SHOWN_FILES]),
                    max(0, len(files) - SHOWN_FILES),
                )
            )
        order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
        return sorted(findings, key=lambda f: order[f.severity])


def _affects(lost: int, snapshots: int, files: int) -> str:
    if not lost:
        return "; no chunk a snapshot uses is known to be lost"
    return (
        f"; {lost} chunks are lost, affecting {snapshots} snapshot{'s' * (snapshots != 1)}"
        f" and {files} file{'s' * (files != 1)}"
    )


__all__ = ["CheckReport", "Checker", "Finding", "Severity", "Subset"]
