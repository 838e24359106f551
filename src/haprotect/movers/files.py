"""The files mover: a directory tree, into the repository and back.

It copies the data set's directory: a filesystem's ``directory`` (its mount
point), a bundle mapping's ``source-dir``, an NFS server's state directory.
The node's files must be on this machine (the inventory's ``local``); there
is no agent to read another machine's yet.

Files that cannot be read are left out of the snapshot and listed in it
(the repository's per-file errors): the item is then only partly backed up,
and the run ends PartiallyFailed, never Completed.

While a set's tiers are held, its cut is a point-in-time copy of the
directory (:mod:`haprotect.movers.filecut`), which the backup then reads.

A restore puts the tree at the target (see :mod:`haprotect.movers.placement`)
and verifies it: as many files and bytes as the snapshot recorded.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from haprotect.errors import ComponentError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.movers import filecut
from haprotect.movers.base import (
    BackupJob,
    BackupOutcome,
    Mover,
    RestoreJob,
    RestoreOutcome,
    size_text,
)
from haprotect.movers.cut import CutRequest
from haprotect.movers.placement import install_tree, refuse_occupied, staged_restore
from haprotect.repo.errors import RestoreError

KINDS = frozenset({"filesystem", "bundle-storage", "nfs-state", "nfs-export", "directory"})
#: location parameters naming the directory, in the order they are looked for (Pacemaker's
#: agents, bundles, topology files, then VCS's Mount/CFSMount, Share and NFSRestart)
DIRECTORY_KEYS = (
    "directory", "source-dir", "nfs_shared_infodir", "path",
    "MountPoint", "PathName", "LocksPathName",
)  # fmt: skip


def directory_of(location: Mapping[str, str]) -> tuple[str, str] | None:
    """``(parameter, path)`` of the directory a location names, if any."""
    for key in DIRECTORY_KEYS:
        value = location.get(key, "")
        if value.startswith("/"):
            return key, value
    return None


class FilesMover(Mover):
    """A directory tree; its cut is a reflinked copy (:mod:`haprotect.movers.filecut`)."""

    name = "files"

    def prepare_cut(self, request: CutRequest) -> filecut.FilesCut | None:
        return filecut.take(request, directory_of)

    def applies_to(self, kind: str) -> bool:
        return kind in KINDS

    def probe(self, item: PlanItem, node: str, inventory: Inventory) -> SourceHealth:
        location = inventory.location(node, item.cluster, item.dataset, item.cluster_location)
        try:
            path = self._directory(node, inventory.access(node).local, location)
        except ComponentError as exc:
            return SourceHealth(node, False, exc.message)
        return SourceHealth(node, True, f"{path} is on this machine")

    def backup(self, job: BackupJob) -> BackupOutcome:
        path = self._directory(job.node, job.access.local, job.location)
        key = directory_of(job.location)
        snapshot = job.repo.backup(
            [path],
            tags=job.tags,
            metadata=job.metadata(key[0] if key else None, {"directory": str(path)}),
            host=job.node,
            on_progress=job.progress,
            record_as=job.record_as,
        )
        stats = snapshot.stats
        files = stats.files_new + stats.files_changed + stats.files_unchanged
        message = f"{files} files, {size_text(stats.bytes_total)} from {path} on {job.node}"
        outcome = BackupOutcome(snapshot, message, {"directory": str(path)})
        if outcome.vanished:
            message += f"; {len(outcome.vanished)} vanished while the backup ran"
        if outcome.errors:
            message += f"; {len(outcome.errors)} could not be read"
        return replace(outcome, message=message)

    def restore(self, job: RestoreJob) -> RestoreOutcome:
        refuse_occupied(job.target, job.overwrite)
        with staged_restore(
            job.repo, job.item.snapshot_id, job.item.root, job.target, job.progress
        ) as (restored, stats):
            install_tree(restored, job.target)
        if stats.errors:
            return RestoreOutcome(
                f"{len(stats.errors)} files could not be restored into {job.target}",
                errors=stats.errors,
                nothing_restored=stats.nothing_restored,
            )
        files, nbytes = count_tree(job.target)
        if (files, nbytes) != (job.item.files, job.item.bytes):
            raise RestoreError(
                f"{job.target} holds {files} files ({nbytes} bytes) after the restore; "
                f"the snapshot has {job.item.files} ({job.item.bytes} bytes)"
            )
        return RestoreOutcome(
            f"{files} files, {size_text(nbytes)} in {job.target}: as in the snapshot",
            {"target": str(job.target), "files": files, "bytes": nbytes},
        )

    @staticmethod
    def _directory(node: str, local: bool, location: Mapping[str, str]) -> Path:
        found = directory_of(location)
        if found is None:
            raise ComponentError(
                f"the location names no directory (looked for {', '.join(DIRECTORY_KEYS)})"
            )
        path = Path(found[1])
        if not local:
            raise ComponentError(
                f"{node}'s files are not on this machine, so {path} cannot be read here",
                hint="run the backup on that node, or say local: true in the inventory",
            )
        if not path.is_dir():
            raise ComponentError(f"{path} is not a directory on {node}")
        return path


def count_tree(root: Path) -> tuple[int, int]:
    """Regular files below ``root`` (each hard link counts), and their total size."""
    files = nbytes = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                files += 1
                nbytes += st.st_size
    return files, nbytes
