"""Restore plans: which tiers of a snapshot set, in which order, to where.

A set is restored bottom-up, in its ``restore_order``: a tier after the
tiers it depends on, so that when the application tier comes back its
database already serves. Either every tier or only the chosen ones; either
to the original place, or under another directory.

- **Original place**: the item's location as the cluster configures it,
  with the inventory's overrides for the node that receives it (the primary
  the set was taken under, for replicated data), which must be this machine.
- **Elsewhere** (``to``): ``TO/<tier>/<dataset>``.

The plan lists what is at each target now, so a user can be shown what a
restore would overwrite before anything is written, and what stops an item
from being restored (a PostgreSQL server running in its target, say) before
any question is asked and any tier replaced. :func:`replaced_under` names
the items that such a problem would leave standing on tiers restored
beneath them: a restore that asks nothing refuses to start over them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from haprotect.errors import UsageError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import RestoreItem, RestorePlan, RestoreTier, SetItem, SnapshotSet
from haprotect.pgtools import server_running
from haprotect.plan.graph import CycleError, dependents, order_problems, restore_order

SHOWN_ENTRIES = 5


def plan_restore(
    snapshot_set: SnapshotSet,
    inventory: Inventory,
    *,
    tiers: Sequence[str] = (),
    to: Path | None = None,
    overwrite: bool = False,
    keep_running: bool | None = None,
) -> RestorePlan:
    """How to restore ``snapshot_set``, bottom-up: each tier's items, where they go, what
    they would replace and what stands in their way (``problems``).

    ``tiers`` restricts it to some tiers (default: all); ``to`` restores under
    a directory instead of the original places; ``overwrite`` lets the
    restore replace what the targets hold.
    """
    known = [t.name for t in snapshot_set.tiers]
    unknown = [t for t in tiers if t not in known]
    if unknown:
        raise UsageError(
            f"set {snapshot_set.id} has no tier {', '.join(unknown)}",
            hint=f"its tiers: {', '.join(known)}",
        )
    edges = {t.name: t.depends_on for t in snapshot_set.tiers}
    order = snapshot_set.restore_order
    if order_problems(order, edges):
        try:
            order = restore_order(edges)
        except CycleError as exc:
            raise UsageError(f"set {snapshot_set.id}: {exc}") from None
    chosen = [t for t in order if not tiers or t in tiers]
    planned = []
    for name in chosen:
        tier = snapshot_set.tier(name)
        items = tuple(
            _elsewhere(item, to) if to is not None else _in_place(item, inventory)
            for item in snapshot_set.items_of(name)
        )
        planned.append(RestoreTier(name, tier.depends_on, items))
    return RestorePlan(
        set=snapshot_set,
        tiers=tuple(planned),
        to=str(to) if to is not None else None,
        overwrite=overwrite,
        keep_running=keep_running if keep_running is not None else to is not None,
    )


def replaced_under(plan: RestorePlan) -> list[tuple[RestoreItem, list[str]]]:
    """Items that cannot be restored, each with the planned tiers below it.

    A tier that depends, directly or through others, on a tier the plan
    restores first would have that tier's data replaced under it (a
    database's storage under its running server), and then fail. A tier
    below counts when some item of it can be restored.
    """
    edges = {t.name: t.depends_on for t in plan.set.tiers}
    restored = [t.name for t in plan.tiers if any(not i.problems for i in t.items)]
    found = []
    for item in plan.items:
        if not item.problems:
            continue
        below = [name for name in restored if item.item.tier in dependents([name], edges)]
        if below:
            found.append((item, below))
    return found


def target_dir(to: Path, tier: str, dataset: str) -> Path:
    """``TO/<tier>/<dataset>``, refusing names that would leave ``TO``."""
    parts = [tier, *dataset.split("/")]
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise UsageError(f"refusing to restore {tier}/{dataset}: the name would leave {to}")
    return to.absolute().joinpath(*parts)


def _elsewhere(item: SetItem, to: Path) -> RestoreItem:
    try:
        target = target_dir(to, item.tier, item.dataset)
    except UsageError as exc:
        return RestoreItem(item, str(to), in_place=False, problems=(exc.message,))
    problems = _live_server(target)
    return RestoreItem(
        item, str(target), in_place=False, existing=existing_at(target), problems=problems
    )


def _in_place(item: SetItem, inventory: Inventory) -> RestoreItem:
    node = item.restore_node
    problems: list[str] = []
    if node is None:
        return RestoreItem(
            item, "", True, problems=("the set does not record which node holds it",)
        )
    location = inventory.location(node, item.cluster, item.dataset, item.cluster_location)
    path = location.get(item.path_key or "", "")
    if not path or not os.path.isabs(path):
        problems.append(
            f"no path for {item.dataset} on {node} (location {item.path_key or '?'}); "
            "restore it with --to DIR"
        )
        return RestoreItem(item, path, True, node, problems=tuple(problems))
    access = inventory.access(node)
    if not access.local:
        problems.append(
            f"{node}'s files are not on this machine ({_local_hint(inventory)}); "
            f"run the restore on {node}, or restore with --to DIR"
        )
    target = Path(path)
    problems += _live_server(target)
    return RestoreItem(item, path, True, node, existing_at(target), tuple(problems))


def _live_server(target: Path) -> tuple[str, ...]:
    """A server running in the target: nothing may replace its files under it."""
    problem = server_running(target)
    return () if problem is None else (problem,)


def _local_hint(inventory: Inventory) -> str:
    if inventory.origin:
        return f"{inventory.origin} does not say local: true"
    return "no inventory says so, and it is not this machine's name"


def existing_at(target: Path) -> tuple[str, ...]:
    """What is at ``target`` now: some of its entries, or what kind of object it is."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return ()
    except OSError as exc:
        return (f"{target} (cannot look: {exc.strerror})",)
    if stat.S_ISDIR(st.st_mode):
        try:
            names = sorted(os.listdir(target))
        except OSError as exc:
            return (f"{target} (cannot list: {exc.strerror})",)
        shown = [str(target / n) for n in names[:SHOWN_ENTRIES]]
        if len(names) > SHOWN_ENTRIES:
            shown.append(f"... and {len(names) - SHOWN_ENTRIES} more in {target}")
        return tuple(shown)
    if stat.S_ISBLK(st.st_mode):
        return (f"{target} (a block device)",)
    return (f"{target} ({st.st_size} bytes)",)
