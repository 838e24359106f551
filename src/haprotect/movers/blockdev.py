"""The block mover: a block device or an image file, as one big file.

An image file is backed up as it is: the repository cuts a big file into
chunks (fixed 64 KiB blocks when its size is a multiple of 4 KiB, as device
images are), so a later backup stores only the blocks that changed.

A block device is different: the repository records a device node as a
node (its number), not its content. So the device is first read, streamed
in 1 MiB pieces, into a staging file, where blocks of zeros become holes
(they cost no disk space, and the repository stores them as holes too),
with a SHA-256 of the whole content computed on the way; that file is what
goes into the repository. The cost is one more sequential read of the
device and staging space for its non-zero blocks.

A restore writes an image file at the target, or, when the target is a
block device, copies the restored content onto it (all of it, zeros
included); the result is checked against the recorded size and hash.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from haprotect.errors import ComponentError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.model.snapshot import JSONValue
from haprotect.movers.base import (
    BackupJob,
    BackupOutcome,
    Mover,
    RestoreJob,
    RestoreOutcome,
    size_text,
)
from haprotect.movers.placement import install_file, refuse_occupied, staged_restore
from haprotect.repo.errors import RestoreError

KINDS = frozenset({"block", "image", "iscsi-lun", "md-raid"})
DEVICE_KEYS = ("image", "device", "path", "raiddev")
PIECE = 1 << 20
BLOCK = 64 << 10
_ZERO = bytes(BLOCK)


def device_of(location: Mapping[str, str]) -> tuple[str, str] | None:
    for key in DEVICE_KEYS:
        value = location.get(key, "")
        if value.startswith("/"):
            return key, value
    return None


class BlockMover(Mover):
    """Copies block devices and image files (see the module docstring)."""

    name = "block"

    def applies_to(self, kind: str) -> bool:
        return kind in KINDS

    def probe(self, item: PlanItem, node: str, inventory: Inventory) -> SourceHealth:
        location = inventory.location(node, item.cluster, item.dataset, item.cluster_location)
        try:
            path, kind = _source(node, inventory.access(node).local, location)
        except ComponentError as exc:
            return SourceHealth(node, False, exc.message)
        return SourceHealth(node, True, f"{kind} {path} is on this machine")

    def backup(self, job: BackupJob) -> BackupOutcome:
        path, kind = _source(job.node, job.access.local, job.location)
        found = device_of(job.location)
        details: dict[str, JSONValue] = {"device": str(path), "type": kind}
        source = path
        if kind == "block device":
            job.note(f"reading block device {path} into a staging file")
            source = job.staging / "device.img"
            size, digest = stage_device(path, source)
            details.update(size=size, sha256=digest, staged=True)
        else:
            details.update(size=path.stat().st_size, staged=False)
        snapshot = job.repo.backup(
            [source],
            tags=job.tags,
            metadata=job.metadata(found[0] if found else None, details),
            host=job.node,
            on_progress=job.progress,
            record_as=job.record_as,
        )
        message = f"{kind} {path}: {size_text(snapshot.stats.bytes_total)}"
        if snapshot.errors:
            message += f"; could not be read: {snapshot.errors[0].message}"
        return BackupOutcome(snapshot, message, details)

    def restore(self, job: RestoreJob) -> RestoreOutcome:
        target = job.target
        device = _is_device(target)
        refuse_occupied(target, job.overwrite)
        near = Path(tempfile.gettempdir()) if device else None
        with staged_restore(
            job.repo, job.item.snapshot_id, job.item.root, target, job.progress, near=near
        ) as (restored, _):
            if restored.is_dir() or restored.is_symlink():
                raise RestoreError(f"snapshot {job.item.snapshot_id[:8]} holds no image file")
            if device:
                copy_onto_device(restored, target)
            else:
                install_file(restored, target)
        size, digest = _measure(target, job.item.details.get("size"))
        expected_size = job.item.details.get("size")
        expected_hash = job.item.details.get("sha256")
        if isinstance(expected_size, int) and size != expected_size:
            raise RestoreError(f"{target} holds {size} bytes; the snapshot has {expected_size}")
        if isinstance(expected_hash, str) and digest != expected_hash:
            raise RestoreError(f"the content of {target} does not match the snapshot's SHA-256")
        checked = "size and SHA-256" if isinstance(expected_hash, str) else "size"
        what = "block device" if device else "image file"
        return RestoreOutcome(
            f"{what} {target}: {size_text(size)}, {checked} as in the snapshot",
            {"target": str(target), "size": size, "sha256": digest},
        )


def _source(node: str, local: bool, location: Mapping[str, str]) -> tuple[Path, str]:
    found = device_of(location)
    if found is None:
        raise ComponentError(
            f"the location names no device or image (looked for {', '.join(DEVICE_KEYS)})"
        )
    path = Path(found[1])
    if not local:
        raise ComponentError(f"{node}'s devices are not on this machine, so {path} cannot be read")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ComponentError(f"cannot read {path} on {node}: {exc.strerror}") from None
    if stat.S_ISBLK(st.st_mode):
        return path, "block device"
    if stat.S_ISREG(st.st_mode):
        return path, "image file"
    raise ComponentError(f"{path} is neither a block device nor a file")


def _is_device(path: Path) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def stage_device(device: Path, staged: Path) -> tuple[int, str]:
    """Copy ``device`` into the sparse file ``staged``; its size and SHA-256."""
    digest = hashlib.sha256()
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        out = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            size = 0
            while piece := os.read(fd, PIECE):
                digest.update(piece)
                for start in range(0, len(piece), BLOCK):
                    block = piece[start : start + BLOCK]
                    if block != _ZERO[: len(block)]:
                        os.pwrite(out, block, size + start)
                size += len(piece)
            os.ftruncate(out, size)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return size, digest.hexdigest()


def copy_onto_device(image: Path, device: Path) -> None:
    """Write every byte of ``image`` to the start of ``device``, then flush it."""
    size = image.stat().st_size
    with image.open("rb") as src:
        fd = os.open(device, os.O_WRONLY | os.O_CLOEXEC)
        try:
            capacity = os.lseek(fd, 0, os.SEEK_END)
            if capacity < size:
                raise RestoreError(f"{device} holds {capacity} bytes; the image has {size}")
            os.lseek(fd, 0, os.SEEK_SET)
            while piece := src.read(PIECE):
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def _measure(path: Path, size: JSONValue) -> tuple[int, str]:
    """Size and SHA-256 of the first ``size`` bytes of ``path`` (all of a file)."""
    digest = hashlib.sha256()
    limit = size if isinstance(size, int) else None
    done = 0
    with path.open("rb") as handle:
        while limit is None or done < limit:
            want = PIECE if limit is None else min(PIECE, limit - done)
            piece = handle.read(want)
            if not piece:
                break
            digest.update(piece)
            done += len(piece)
    return done, digest.hexdigest()
