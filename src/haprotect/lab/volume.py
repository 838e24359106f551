"""The lab's shared volume: an XFS image with reflinks, loop-mounted, when run as root.

A real cluster's shared filesystem is a volume of its own. Given ``volume:
xfs``, the lab makes one: a sparse image file ``<lab>/volume.img``
formatted with ``mkfs.xfs -m reflink=1`` and loop-mounted on
``<lab>/volume``. The shared directory is ``<lab>/volume/shared`` and the
quiesced backup's cut of it goes to ``<lab>/volume/cuts`` (the inventory's
``cut_dir``), on the same filesystem, so that ``cp --reflink=auto`` shares
blocks instead of copying them: the cut takes the same short time whatever
the amount of data. Without a volume the shared directory is a plain
directory and the cut is a copy.

Mounting needs root, ``mkfs.xfs`` (Debian's ``xfsprogs``) and loop devices;
each is checked with a one-line message. ``lab up`` mounts the volume if it
is not mounted (after a reboot, say); ``lab down`` leaves it mounted, as a
cluster's shared disk stays attached while its services are stopped, so a
restore in place writes onto the volume; ``lab down --purge`` unmounts it
and removes the image.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from haprotect.errors import ComponentError, UsageError

KINDS = ("xfs",)
AUTO = "auto"  #: xfs where this process can make and mount it, else none
IMAGE = "volume.img"
MOUNT = "volume"
DEFAULT_SIZE = 4 << 30  #: sparse: only what is written takes space
_TIMEOUT = 120


def image_path(root: Path) -> Path:
    return root / IMAGE


def mount_point(root: Path) -> Path:
    return root / MOUNT


def check_kind(kind: str) -> None:
    if kind not in KINDS and kind != AUTO:
        choices = ", ".join((*KINDS, AUTO))
        raise UsageError(f"unknown lab volume {kind!r}", hint=f"choose one of: {choices}")


def resolve_auto(root: Path) -> tuple[str | None, str]:
    """For ``auto``: make and mount an XFS volume if this process can; (kind, what happened).

    What a failed attempt made (the image, the mount point) is removed again;
    nothing that was there before is touched.
    """
    existed = {p for p in (image_path(root), mount_point(root)) if os.path.lexists(p)}
    try:
        check_can_mount()
        ensure(root, "xfs")
    except (UsageError, ComponentError) as exc:
        for made in {image_path(root), mount_point(root)} - existed:
            if made.is_dir() and not os.path.ismount(made):
                with contextlib.suppress(OSError):
                    made.rmdir()
            elif made.is_file():
                made.unlink()
        return None, f"the shared directory is a plain directory ({exc.message})"
    return "xfs", f"the shared directory is on an XFS volume with reflinks ({mount_point(root)})"


def check_can_mount() -> None:
    """Raise, in one line, when this process cannot make and mount the volume."""
    if os.geteuid() != 0:
        raise UsageError(
            "the lab's XFS volume is loop-mounted, which needs root",
            hint="run as root, or bring the lab up with --volume none",
        )
    for tool in ("mkfs.xfs", "mount", "umount"):
        if _tool(tool) is None:
            raise ComponentError(
                f"{tool} is not installed", hint="apt-get install xfsprogs (scripts/bootstrap does)"
            )


def ensure(root: Path, kind: str, size: int = DEFAULT_SIZE) -> bool:
    """Create the image if missing and mount it if not mounted; True if anything was done."""
    check_kind(kind)
    target = mount_point(root)
    if os.path.ismount(target):
        return False
    check_can_mount()
    image = image_path(root)
    if not image.exists():
        fresh = image.with_name(image.name + ".new")  # renamed once it holds a filesystem
        with fresh.open("wb") as handle:
            handle.truncate(size)
        try:
            _run(["mkfs.xfs", "-q", "-f", "-m", "reflink=1", "-L", "hp-lab", str(fresh)])
        except ComponentError:
            fresh.unlink(missing_ok=True)
            raise
        fresh.rename(image)
    target.mkdir(exist_ok=True)
    _run(["mount", "-o", "loop", str(image), str(target)])
    target.chmod(0o755)
    return True


def release(root: Path) -> bool:
    """Unmount the volume if mounted (the loop device goes with it); True if it was."""
    target = mount_point(root)
    if not os.path.ismount(target):
        return False
    for attempt in range(10):
        done = subprocess.run(
            [_need("umount"), str(target)], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return True
        time.sleep(0.2 * (attempt + 1))  # a process that just stopped may still hold it
    raise ComponentError(
        f"cannot unmount the lab's volume {target}: {done.stderr.strip() or 'busy'}",
        hint=f"see what holds it: fuser -vm {target}",
    )


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _need(name: str) -> str:
    found = _tool(name)
    if found is None:
        raise ComponentError(f"{name} is not installed")
    return found


def _run(argv: list[str]) -> None:
    command = [_need(argv[0]), *argv[1:]]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise ComponentError(f"{argv[0]} did not finish in {_TIMEOUT}s") from None
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).strip().splitlines() if ln.strip()]
        raise ComponentError(f"{' '.join(argv)} failed: {lines[0] if lines else 'no output'}")
