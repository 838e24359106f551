"""Putting restored data in place: restore beside the target, then swap it in.

A snapshot holds its data under the absolute path it was read from
(``/srv/data`` is ``srv/data`` in the tree), with that path's ancestors. To
put it at another path, the snapshot is restored into a staging directory on
the target's own filesystem, and the data is then moved in by renames:

- a target that does not exist is created by renaming the restored tree;
- an existing directory keeps its inode (it may be a mount point): what it
  holds is moved aside into ``<target>/.haprotect-old-*``, the restored
  entries are moved in, its owner, mode and times become the snapshot's, and
  the old entries are deleted; if moving in fails, they are kept and the
  error names where;
- a file (an image) is replaced with one rename.

Staging lives inside an existing target directory (so renames stay on one
filesystem even when the target is a mount point), else beside the target.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from haprotect.model.snapshot import RestoreStats
from haprotect.movers.base import ProgressSink
from haprotect.repo import Repository
from haprotect.repo.errors import RestoreError

STAGING_PREFIX = ".haprotect-restore-"
OLD_PREFIX = ".haprotect-old-"


def occupied(target: Path) -> bool:
    """Whether ``target`` holds something a restore would replace."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return any(not _ours(name) for name in os.listdir(target))
    return True


def refuse_occupied(target: Path, overwrite: bool) -> None:
    if not overwrite and occupied(target):
        raise RestoreError(
            f"{target} is not empty: refusing to overwrite it",
            hint="restore elsewhere (--to DIR), empty it, or confirm overwriting it",
        )


@contextmanager
def staged_restore(
    repo: Repository,
    snapshot_id: str,
    root: str,
    target: Path,
    progress: ProgressSink | None,
    *,
    near: Path | None = None,
) -> Iterator[tuple[Path, RestoreStats]]:
    """Restore the snapshot near ``target``; yield where its ``root`` landed, and the stats.

    ``near`` puts the staging directory elsewhere (for a block device, whose
    directory is ``/dev``). It is removed afterwards, whatever happens.
    """
    target = target.absolute()
    if near is None and target.is_dir() and not target.is_symlink():
        near = target
    elif near is None:
        near = target.parent
    near.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=near))
    try:
        stats = repo.restore(snapshot_id, staging, on_progress=progress)
        restored = staging.joinpath(*[p for p in root.split("/") if p])
        if not os.path.lexists(restored):
            raise RestoreError(f"snapshot {snapshot_id[:8]} holds nothing at {root}")
        yield restored, stats
    finally:
        remove_tree(staging)


def install_tree(restored: Path, target: Path) -> None:
    """Make ``target`` the restored directory (see the module's description)."""
    target = target.absolute()
    if not restored.is_dir() or restored.is_symlink():
        raise RestoreError(f"the snapshot holds no directory at {target.name}")
    if not os.path.lexists(target):
        os.rename(restored, target)
        return
    if target.is_symlink() or not target.is_dir():
        raise RestoreError(f"{target} exists and is not a directory", hint="remove it first")
    old = Path(tempfile.mkdtemp(prefix=OLD_PREFIX, dir=target))
    for name in os.listdir(target):
        if not _ours(name):
            os.rename(target / name, old / name)
    try:
        for name in os.listdir(restored):
            os.rename(restored / name, target / name)
        _copy_metadata(restored, target)
    except OSError as exc:
        raise RestoreError(
            f"cannot move the restored data into {target}: {exc.strerror}; "
            f"what was there is kept in {old}"
        ) from None
    remove_tree(old)


def install_file(restored: Path, target: Path) -> None:
    """Make ``target`` the restored file, replacing a file that is there."""
    target = target.absolute()
    if target.is_dir() and not target.is_symlink():
        raise RestoreError(f"{target} is a directory, and the snapshot holds a file")
    os.replace(restored, target)


def _copy_metadata(source: Path, target: Path) -> None:
    st = os.lstat(source)
    if os.geteuid() == 0:
        os.chown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _ours(name: str) -> bool:
    return name.startswith((STAGING_PREFIX, OLD_PREFIX))


def remove_tree(path: Path) -> None:
    """Remove a staging tree, even where the restore made directories read-only."""
    if not os.path.lexists(path):
        return
    for dirpath, _, _ in os.walk(path):
        try:
            os.chmod(dirpath, 0o700)
        except OSError:
            continue
    shutil.rmtree(path, ignore_errors=True)
