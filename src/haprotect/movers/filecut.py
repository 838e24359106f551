"""The cut of a files data set: a point-in-time copy of its directory, made while held.

``cp --reflink=auto -a`` shares blocks where the filesystem can (XFS made
with ``reflink=1``, btrfs), so the copy takes about the same short time
whatever the amount of data; elsewhere it is a plain copy, which grows with
it. The copy goes to the location's ``cut_dir`` when the inventory gives one
(a directory on the data's own filesystem, where reflinks work), under
``<cut_dir>/<cut name>/``, else under the cut request's ``root``.

It never writes where a quiescer of the same set froze the filesystem
(``fsfreeze``): a writer there would block until the thaw, which comes only
after the cut. A ``cut_dir`` on such a filesystem gives way to the staging
directory; a staging directory on one is refused. The copy has a time limit
(:data:`COPY_SECONDS`), after which it is abandoned and the data set is
copied live after resume. What a cut wrote into a ``cut_dir`` is removed by
its handle's ``discard()``, or at once when the copy fails.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from haprotect.errors import HaprotectError
from haprotect.movers.cut import CutHandle, CutRequest
from haprotect.movers.placement import remove_tree

log = logging.getLogger(__name__)

#: ``(parameter, path)`` of the directory a location names (the files mover's reading)
DirectoryOf = Callable[[Mapping[str, str]], tuple[str, str] | None]
#: How long the copy made while the tiers are held may take.
COPY_SECONDS = 900.0


@dataclass(eq=False)
class FilesCut(CutHandle):
    """A directory's copy; ``made`` is what to remove outside staging (a ``cut_dir``'s)."""

    made: Path | None = None

    def discard(self) -> str | None:
        if self.made is None:
            return None
        remove_tree(self.made)
        if os.path.lexists(self.made):
            return f"the cut's copy {self.made} could not be removed"
        return None


def take(request: CutRequest, directory_of: DirectoryOf) -> FilesCut | None:
    """Copy the item's directory while held; None when its location names none."""
    item, inventory = request.item, request.inventory
    node = item.source.node
    if node is None:
        return None
    if not inventory.access(node).local:
        raise HaprotectError(f"the files of {node} are not on this machine")
    location = inventory.location(node, item.cluster, item.dataset, item.cluster_location)
    found = directory_of(location)
    if found is None:
        return None
    key, directory = found
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", item.dataset) or "item"
    warning = None
    made: Path | None = None
    cut_dir = location.get("cut_dir")
    if cut_dir and _device(Path(cut_dir)) not in request.frozen:
        made = Path(cut_dir) / request.cut_name
        target = made / name
    else:
        if cut_dir:
            warning = f"cut_dir {cut_dir} is on a filesystem this set freezes; cut into staging"
        if _device(request.root) in request.frozen:
            raise HaprotectError(
                f"the staging directory {request.root} is on a filesystem this set freezes"
            )
        target = request.root / name
    if os.path.lexists(target):
        raise HaprotectError(f"the cut's copy {target} exists already")
    try:
        method = copy_tree(Path(directory), target)
    except BaseException:
        remove_tree(target)
        if made is not None:
            _remove_if_empty(made)
        raise
    return FilesCut(
        details={"cut": method, "source": directory, "at": _now()},
        replaces={key: str(target)},
        warning=warning,
        made=made,
    )


def copy_tree(source: Path, target: Path, seconds: float = COPY_SECONDS) -> str:
    """Copy ``source`` into a new ``target``: ``cp --reflink=auto -a``, else a plain copy."""
    if not source.is_dir():
        raise HaprotectError(f"{source} is not a directory")
    target.mkdir(parents=True, mode=0o700)
    cp = shutil.which("cp")
    if cp is not None:
        try:
            done = subprocess.run(
                [cp, "--reflink=auto", "-a", "--", f"{source}/.", str(target)],
                capture_output=True,
                text=True,
                check=False,
                timeout=seconds,
            )
        except subprocess.TimeoutExpired:
            raise HaprotectError(
                f"copying {source} took longer than {seconds:g}s; abandoned"
            ) from None
        if done.returncode == 0:
            return "cp --reflink=auto -a"
        log.info("cp --reflink=auto failed (%s); copying", done.stderr.strip())
        remove_tree(target)
        target.mkdir(parents=True, mode=0o700)
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    return "copy"


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        return  # another item's copy is in it: its own handle discards it


def _device(path: Path) -> int | None:
    """The device of ``path``, or of its nearest existing parent."""
    for candidate in (path, *path.parents):
        try:
            return os.stat(candidate).st_dev
        except OSError:
            continue
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat()
