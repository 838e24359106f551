"""Movers: plug-ins that copy one kind of data into the repository and back out.

Terms:

mover
    Copies the data sets of some kinds (``applies_to(kind)``): ``files`` a
    directory tree, ``postgresql`` a physical base backup taken from a
    standby, ``block`` a block device or image file. It also checks whether
    a node is a good source now (``probe``: reachable, streaming, lag).
job
    One item to back up (:class:`BackupJob`: the node, its location, the
    metadata to record) or restore (:class:`RestoreJob`: the snapshot and
    the target). The contract is in :mod:`haprotect.movers.base`.
cut
    What a mover makes of an item while the set's tiers are held
    (``prepare_cut``, :class:`CutRequest`): a :class:`CutHandle` the copy
    reads from and releases after (:mod:`haprotect.movers.cut`).

Built-ins are registered here, explicitly and only when first asked for;
third parties add theirs through the ``haprotect.movers`` entry point group
(a factory returning the mover). The first mover that applies to a kind is
used: built-ins first, in the order postgresql, files, block.
"""

from __future__ import annotations

from haprotect.movers.base import (
    BackupJob,
    BackupOutcome,
    Mover,
    RestoreJob,
    RestoreOutcome,
    vanished,
)
from haprotect.movers.cut import CutHandle, CutRequest
from haprotect.movers.placement import remove_tree
from haprotect.registry import Builtin, Registry

#: The movers, by name; ``select(kind)`` finds the one that copies a data set kind.
movers: Registry[Mover, str] = Registry(
    "mover",
    "haprotect.movers",
    (
        Builtin("postgresql", "haprotect.movers.postgres:PostgresMover"),
        Builtin("files", "haprotect.movers.files:FilesMover"),
        Builtin("block", "haprotect.movers.blockdev:BlockMover"),
    ),
    contract=(
        "probe",
        "backup",
        "restore",
        "prepare_cut",
        "cut_needs_source",
        "quiescer_options",
    ),
)


def get_mover(name: str) -> Mover:
    """The mover registered as ``name`` (``movers.get``)."""
    return movers.get(name)


def mover_for(kind: str) -> Mover | None:
    """The mover that copies data sets of ``kind``, or None (``movers.select``)."""
    return movers.select(kind)


def mover_name_for(kind: str) -> str | None:
    mover = mover_for(kind)
    return mover.name if mover is not None else None


__all__ = [
    "BackupJob",
    "BackupOutcome",
    "CutHandle",
    "CutRequest",
    "Mover",
    "RestoreJob",
    "RestoreOutcome",
    "get_mover",
    "mover_for",
    "mover_name_for",
    "movers",
    "remove_tree",
    "vanished",
]
