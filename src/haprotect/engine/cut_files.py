"""The cut of a files data set: a point-in-time copy of its directory, made while held.

``cp --reflink=auto -a`` shares blocks where the filesystem can (XFS made
with ``reflink=1``, btrfs), so the copy takes about the same short time
whatever the amount of data; elsewhere it is a plain copy, which grows with
it. The copy goes to the location's ``cut_dir`` when the inventory gives one
(a directory on the data's own filesystem, where reflinks work), under
``<cut_dir>/<cut name>/``, else under the set's staging directory.

It never writes where a quiescer of the same set froze the filesystem
(``fsfreeze``): a writer there would block until the thaw, which comes only
after the cut. A ``cut_dir`` on such a filesystem gives way to the staging
directory; a staging directory on one is refused. The copy has a time limit
(:data:`COPY_SECONDS`), after which it is abandoned and the data set is
copied live after resume. :func:`discard` removes what the cuts wrote into
``cut_dir`` directories, whatever became of them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Collection
from pathlib import Path

from haprotect.errors import HaprotectError
from haprotect.model.plan import Plan, PlanItem, PlanSet
from haprotect.movers.files import directory_of
from haprotect.movers.placement import remove_tree
from haprotect.quiesce import QuiesceSpec

log = logging.getLogger(__name__)

#: Movers whose data set is cut by copying its directory while held.
FILE_MOVERS = frozenset({"files"})
#: How long the copy made while the tiers are held may take.
COPY_SECONDS = 900.0


def frozen_devices(specs: Collection[QuiesceSpec]) -> frozenset[int]:
    """The devices of the filesystems the set's ``fsfreeze`` quiescers freeze."""
    found: set[int] = set()
    for spec in specs:
        mountpoint = spec.options.get("mountpoint") if spec.kind == "fsfreeze" else None
        if isinstance(mountpoint, str):
            try:
                found.add(os.stat(mountpoint).st_dev)
            except OSError:
                continue  # its quiescer says why it cannot freeze it
    return frozenset(found)


def cut_target(
    plan: Plan, item: PlanItem, root: Path, cut_name: str, frozen: Collection[int]
) -> tuple[str, Path, Path, str | None] | None:
    """(location key, source directory, where to copy it, a warning), or None: nothing to cut."""
    node = item.source.node
    if item.mover not in FILE_MOVERS or node is None:
        return None
    if not plan.inventory.access(node).local:
        raise HaprotectError(f"the files of {node} are not on this machine")
    location = plan.inventory.location(node, item.cluster, item.dataset, item.cluster_location)
    found = directory_of(location)
    if found is None:
        return None
    key, directory = found
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", item.dataset) or "item"
    warning = None
    cut_dir = location.get("cut_dir")
    if cut_dir:
        if _device(Path(cut_dir)) not in frozen:
            return key, Path(directory), Path(cut_dir) / cut_name / name, None
        warning = f"cut_dir {cut_dir} is on a filesystem this set freezes; cut into staging"
    if _device(root) in frozen:
        raise HaprotectError(f"the staging directory {root} is on a filesystem this set freezes")
    return key, Path(directory), root / name, warning


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


def discard(plan: Plan, pset: PlanSet, cut_name: str) -> list[str]:
    """Remove ``<cut_dir>/<cut_name>`` of every item that has a ``cut_dir``; what stayed."""
    stayed: list[str] = []
    for tier in pset.tiers:
        for item in tier.items:
            node = item.source.node
            if item.mover not in FILE_MOVERS or node is None:
                continue
            location = plan.inventory.location(
                node, item.cluster, item.dataset, item.cluster_location
            )
            cut_dir = location.get("cut_dir")
            if not cut_dir:
                continue
            made = Path(cut_dir) / cut_name
            remove_tree(made)
            if os.path.lexists(made):
                stayed.append(f"{item.scope}: the cut's copy {made} could not be removed")
    return stayed


def _device(path: Path) -> int | None:
    """The device of ``path``, or of its nearest existing parent."""
    for candidate in (path, *path.parents):
        try:
            return os.stat(candidate).st_dev
        except OSError:
            continue
    return None
