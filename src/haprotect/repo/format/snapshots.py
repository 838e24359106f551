"""Snapshot blobs: ``snapshots/<id>``, the last thing a backup writes (then its summary,
:mod:`haprotect.repo.format.summaries`).

A snapshot blob is a sealed blob holding zstd-compressed JSON: time, host,
user, backed-up paths, tags, free-form metadata, the parent's id, the ids of
the tree chunks, statistics and the per-file errors. Its id is the unkeyed
BLAKE3 of the sealed bytes. A snapshot is visible exactly when its blob
exists, and it is written only after every pack and index blob it needs.

Listing skips what it cannot read: a stray under ``snapshots/`` (no blob id
for a name) is no snapshot, and a damaged one (or one of a newer version)
is left out with a warning; ``check`` names both. Prune lists strictly: a
snapshot it cannot read stops it, since its data must not be freed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

import blake3

from haprotect.model.snapshot import BackupStats, FileError, Snapshot
from haprotect.redact import display_url
from haprotect.repo.errors import IntegrityError, SnapshotNotFound, UnsupportedVersion
from haprotect.repo.format.crypto import MasterKey, SealedKind, seal, unseal
from haprotect.repo.format.names import blob_ids
from haprotect.repo.format.tree import TREE_VERSION
from haprotect.storage.base import BlobNotFound, BlobStore, PermanentStorageError

SNAPSHOTS_PREFIX = "snapshots/"
SNAPSHOT_VERSION = 1
_LOAD_THREADS = 8

log = logging.getLogger("haprotect.repo")


def encode_snapshot(snapshot: Snapshot) -> bytes:
    body = {
        "version": SNAPSHOT_VERSION,
        "tree_version": TREE_VERSION,
        "time": snapshot.time.isoformat(),
        "host": snapshot.host,
        "username": snapshot.username,
        "paths": list(snapshot.paths),
        "tags": list(snapshot.tags),
        "metadata": dict(snapshot.metadata),
        "parent": snapshot.parent,
        "tree": list(snapshot.tree),
        "stats": asdict(snapshot.stats),
        "errors": [asdict(e) for e in snapshot.errors],
    }
    return json.dumps(body, ensure_ascii=False).encode()


def decode_snapshot(snapshot_id: str, data: bytes) -> Snapshot:
    what = f"snapshot {snapshot_id}"
    try:
        body: dict[str, Any] = json.loads(data)
        for field in ("version", "tree_version"):
            if int(body[field]) > SNAPSHOT_VERSION:
                raise UnsupportedVersion(
                    f"{what} uses {field.replace('_', ' ')} {body[field]}; this haprotect reads "
                    f"up to {SNAPSHOT_VERSION}",
                    hint="upgrade haprotect",
                )
        return Snapshot(
            id=snapshot_id,
            time=datetime.fromisoformat(body["time"]),
            host=str(body["host"]),
            username=str(body["username"]),
            paths=tuple(body["paths"]),
            tags=tuple(body["tags"]),
            metadata=body["metadata"],
            parent=body["parent"],
            tree=tuple(body["tree"]),
            stats=BackupStats(**body["stats"]),
            errors=tuple(FileError(**e) for e in body["errors"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{what} is malformed ({exc})") from None


def write_snapshot(store: BlobStore, key: MasterKey, snapshot: Snapshot) -> Snapshot:
    """Store ``snapshot`` (its ``id`` is ignored); return it with its id."""
    blob = seal(key, SealedKind.SNAPSHOT, encode_snapshot(snapshot))
    snapshot_id = blake3.blake3(blob).hexdigest()
    store.put(SNAPSHOTS_PREFIX + snapshot_id, blob)
    return replace(snapshot, id=snapshot_id)


def load_snapshot(store: BlobStore, key: MasterKey, snapshot_id: str) -> Snapshot:
    try:
        blob = store.get(SNAPSHOTS_PREFIX + snapshot_id)
    except BlobNotFound:
        raise SnapshotNotFound(f"no snapshot {snapshot_id} in {display_url(store.url)}") from None
    if blake3.blake3(blob).hexdigest() != snapshot_id:
        raise IntegrityError(f"snapshot {snapshot_id} does not match its id: it is damaged")
    what = f"snapshot {snapshot_id}"
    return decode_snapshot(snapshot_id, unseal(key, SealedKind.SNAPSHOT, blob, what))


def snapshot_ids(store: BlobStore) -> list[str]:
    """The ids of the snapshot blobs (strays under ``snapshots/`` left out)."""
    return sorted(
        info.key.removeprefix(SNAPSHOTS_PREFIX) for info in blob_ids(store, SNAPSHOTS_PREFIX)
    )


def list_snapshots(store: BlobStore, key: MasterKey, *, strict: bool = False) -> list[Snapshot]:
    """Every snapshot, oldest first; one that cannot be read raises if ``strict``, else is
    skipped with a warning. One deleted meanwhile (a concurrent forget) is skipped."""
    found = load_snapshots(
        snapshot_ids(store), lambda i: load_snapshot(store, key, i), strict=strict
    )
    return sorted(found, key=lambda s: (s.time, s.id))


def load_snapshots(
    ids: Sequence[str], load: Callable[[str], Snapshot], *, strict: bool = False
) -> list[Snapshot]:
    """The snapshots ``ids`` loaded by ``load``, several at once, in no set order.

    One deleted meanwhile is skipped; one that cannot be read raises if
    ``strict``, else is skipped with a warning.
    """

    def one(snapshot_id: str) -> Snapshot | None:
        try:
            return load(snapshot_id)
        except SnapshotNotFound:
            return None
        except (IntegrityError, UnsupportedVersion, PermanentStorageError) as exc:
            if strict:
                raise
            log.warning("%s; skipped it (`haprotect repo check` names it)", exc)
            return None

    if len(ids) <= 1:
        loaded = [one(i) for i in ids]
    else:
        with ThreadPoolExecutor(max_workers=_LOAD_THREADS) as pool:
            loaded = list(pool.map(one, ids))
    return [s for s in loaded if s is not None]


def resolve_id(store: BlobStore, prefix: str) -> str:
    """The full id of the one snapshot whose id starts with ``prefix``."""
    matches = [i for i in snapshot_ids(store) if i.startswith(prefix.lower())]
    if not matches:
        raise SnapshotNotFound(f"no snapshot {prefix} in {display_url(store.url)}")
    if len(matches) > 1:
        raise SnapshotNotFound(
            f"snapshot id {prefix} is ambiguous in {display_url(store.url)} ({len(matches)} match)",
            hint="give more characters of the id",
        )
    return matches[0]
