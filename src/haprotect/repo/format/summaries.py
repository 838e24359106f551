"""Snapshot summaries: ``cache/snapshots``, what a backup needs to find its parent.

A backup's parent is the latest snapshot of the same host and paths. Finding
it by loading every snapshot costs a read, a decryption and a JSON parse per
snapshot, each backup. The summaries blob keeps, for each snapshot id, the
three fields the choice needs (time, host, paths), so a backup loads only the
parent it picks.

The blob is a cache, never the truth. The listing of ``snapshots/`` says
which snapshots exist: a summary whose snapshot is not listed (forgotten,
pruned) is dropped, a listed snapshot without a summary (written by a backup
that died before updating the blob, by a concurrent backup whose update was
overwritten, by ``repo copy`` or an older haprotect) is loaded and summarised.
A snapshot id is the hash of its blob, so the summary of an id never goes out
of date. The chosen parent is loaded and checked against its summary; one
deleted since the listing is passed over for the next candidate, so a
concurrent forget never fails a backup. A blob that cannot be read (damaged,
of a newer version) is rebuilt from the snapshots. Writers replace the blob
whole (the store's ``put`` is atomic); when two race, the last one wins and
the other's snapshot is loaded by the next backup, which writes it back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from haprotect.model.snapshot import Snapshot
from haprotect.repo.errors import IntegrityError, SnapshotNotFound, UnsupportedVersion
from haprotect.repo.format.crypto import MasterKey, SealedKind, seal, unseal
from haprotect.repo.format.snapshots import load_snapshot, load_snapshots, snapshot_ids
from haprotect.storage.base import BlobNotFound, BlobStore, PermanentStorageError, StorageError

SUMMARIES_KEY = "cache/snapshots"
SUMMARIES_VERSION = 1

Loader = Callable[[str], Snapshot]
"""Loads one snapshot by its full id (raising :class:`SnapshotNotFound` when it is gone)."""

log = logging.getLogger("haprotect.repo")


@dataclass(frozen=True, slots=True)
class Summary:
    """What choosing a parent needs of a snapshot."""

    time: datetime
    host: str
    paths: tuple[str, ...]

    @classmethod
    def of(cls, snapshot: Snapshot) -> Summary:
        return cls(snapshot.time, snapshot.host, tuple(snapshot.paths))

    def matches(self, host: str, paths: Sequence[str]) -> bool:
        return self.host == host and sorted(self.paths) == sorted(paths)


def encode_summaries(summaries: dict[str, Summary]) -> bytes:
    body = {
        "version": SUMMARIES_VERSION,
        "snapshots": {
            i: [s.time.isoformat(), s.host, list(s.paths)] for i, s in sorted(summaries.items())
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def decode_summaries(data: bytes) -> dict[str, Summary]:
    try:
        body: dict[str, Any] = json.loads(data)
        if int(body["version"]) > SUMMARIES_VERSION:
            raise UnsupportedVersion(
                f"{SUMMARIES_KEY} uses version {body['version']}; this haprotect reads up to "
                f"{SUMMARIES_VERSION}"
            )
        return {
            str(i): Summary(datetime.fromisoformat(t), str(h), tuple(str(p) for p in paths))
            for i, (t, h, paths) in body["snapshots"].items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{SUMMARIES_KEY} is malformed ({exc})") from None


def read_summaries(store: BlobStore, key: MasterKey) -> dict[str, Summary]:
    """The stored summaries; none when the blob is missing or cannot be read."""
    try:
        blob = store.get(SUMMARIES_KEY)
    except BlobNotFound:
        return {}
    except PermanentStorageError as exc:
        log.warning("%s cannot be read (%s); summarising the snapshots again", SUMMARIES_KEY, exc)
        return {}
    try:
        return decode_summaries(unseal(key, SealedKind.SUMMARIES, blob, SUMMARIES_KEY))
    except (IntegrityError, UnsupportedVersion) as exc:
        log.warning("%s; summarising the snapshots again", exc)
        return {}


class SnapshotSummaries:
    """The summaries of the snapshots listed now: a parent found loading only the parent.

    ``load`` loads a snapshot by its full id (:func:`load_snapshot` by default);
    every snapshot this reads goes through it.
    """

    def __init__(self, store: BlobStore, key: MasterKey, load: Loader | None = None) -> None:
        self._store = store
        self._key = key
        self._load: Loader = load or self._load_snapshot
        self._known: dict[str, Summary] | None = None
        self._stored: dict[str, Summary] = {}
        self._loaded: dict[str, Snapshot] = {}

    def _load_snapshot(self, snapshot_id: str) -> Snapshot:
        return load_snapshot(self._store, self._key, snapshot_id)

    def known(self) -> dict[str, Summary]:
        """``{id: summary}`` of every readable snapshot listed (read once, then kept)."""
        if self._known is None:
            listed = snapshot_ids(self._store)
            self._stored = read_summaries(self._store, self._key)
            known = {i: self._stored[i] for i in listed if i in self._stored}
            missing = [i for i in listed if i not in known]
            for snapshot in load_snapshots(missing, self._load):
                known[snapshot.id] = Summary.of(snapshot)
                self._loaded[snapshot.id] = snapshot  # not loaded again if it is the parent
            self._known = known
        return self._known

    def latest(self, host: str, paths: Sequence[str]) -> Snapshot | None:
        """The latest snapshot of ``host`` with the same set of ``paths``, or None.

        Only the snapshot returned (and candidates found gone or different from
        their summary on the way) is loaded.
        """
        known = self.known()
        candidates = sorted(
            ((s.time, i) for i, s in known.items() if s.matches(host, paths)), reverse=True
        )
        for _, snapshot_id in candidates:
            try:
                snapshot = self._loaded.pop(snapshot_id, None) or self._load(snapshot_id)
            except SnapshotNotFound:
                del known[snapshot_id]  # forgotten since the listing
                continue
            except (IntegrityError, UnsupportedVersion, PermanentStorageError) as exc:
                log.warning("%s; not taken as the parent", exc)
                del known[snapshot_id]
                continue
            summary = Summary.of(snapshot)
            if summary != known[snapshot_id]:
                # never for a blob this wrote; a stray summary must not pick a parent
                known[snapshot_id] = summary
                return self.latest(host, paths)
            return snapshot
        return None

    def record(self, store: BlobStore, added: Iterable[Snapshot] = ()) -> None:
        """Store the summaries known, with ``added``, if they differ from those stored.

        A failure to store them is logged, not raised: the snapshots are written
        and the next backup summarises what is missing.
        """
        known = dict(self.known())
        known.update((s.id, Summary.of(s)) for s in added)
        if known == self._stored:
            return
        blob = seal(self._key, SealedKind.SUMMARIES, encode_summaries(known))
        try:
            store.put(SUMMARIES_KEY, blob)
        except StorageError as exc:
            log.warning("could not store %s (%s); the next backup adds it", SUMMARIES_KEY, exc)
            return
        self._stored = known
