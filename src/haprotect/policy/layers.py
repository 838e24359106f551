"""Layered storage: data sets that lie on other data sets.

Terms:

backing
    The data set another one lies on (:attr:`DataSet.backing`): the DRBD
    device under a filesystem, the volume group under it, the filesystem
    holding a database directory. Data set A lies *above* B when B is A's
    backing, or the backing of a data set A lies above.
lower layer
    Block-level storage (:data:`BLOCK_KINDS`) that other data lies above.

Protecting every layer copies the same bytes several times: blocks, files,
database. So, after each data set has been decided on its own:

1. A lower layer with a protected data set above it is *covered*: it is
   excluded, with a reason naming the data set on top, unless the rule
   ``protect_lower_layers`` is true or its own rule says ``include: true``
   (then it stays, with a reason saying that it is protected twice on
   purpose).
2. A protected data set that holds another protected one (a filesystem
   holding a database directory) gets a reason saying so; the inner item's
   ``what.backing`` tells the backup not to copy that directory twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from haprotect.model.policy import Decision, Excluded, Item, Reason
from haprotect.model.topology import Cluster, DataSet
from haprotect.policy.rules import Rules

#: Kinds of data set that are block devices (or pools of them), not files.
BLOCK_KINDS = frozenset({"drbd", "lvm", "md-raid", "iscsi-lun", "zfs"})

Outcome = Item | Excluded


def apply_layers(
    cluster: Cluster, rules: Rules, outcomes: Mapping[str, Outcome]
) -> dict[str, Outcome]:
    """``outcomes`` (data set id -> its own decision) with layering applied."""
    above = _above(cluster)
    chosen = {ds_id for ds_id, outcome in outcomes.items() if isinstance(outcome, Item)}
    covered = {
        ds.id
        for ds in cluster.datasets
        if ds.id in chosen
        and ds.kind in BLOCK_KINDS
        and not _kept(rules, cluster.name, ds.id)
        and any(_nearest(ds.id, above, chosen))
    }
    protected = chosen - covered
    result = dict(outcomes)
    for ds in cluster.datasets:
        outcome = outcomes.get(ds.id)
        if not isinstance(outcome, Item):
            continue
        tops = list(_nearest(ds.id, above, protected)) if ds.kind in BLOCK_KINDS else []
        if ds.id in covered and tops:  # no tops: block layers lying on each other in a cycle
            result[ds.id] = _excluded(cluster, rules, ds, tops)
        elif tops:
            result[ds.id] = _add_include(outcome, _kept_reason(cluster, rules, ds, tops))
        else:
            inner = [d for d in above.get(ds.id, ()) if d.id in protected]
            result[ds.id] = _add_include(outcome, *(_holds_reason(d) for d in inner))
    return result


Top = tuple[DataSet, tuple[DataSet, ...]]  #: a data set above another, and those between


def _above(cluster: Cluster) -> dict[str, list[DataSet]]:
    """Data set id -> the data sets lying directly on it, in cluster order."""
    found: dict[str, list[DataSet]] = {}
    for ds in cluster.datasets:
        if ds.backing is not None:
            found.setdefault(ds.backing, []).append(ds)
    return found


def _nearest(
    ds_id: str, above: Mapping[str, list[DataSet]], wanted: set[str], seen: set[str] | None = None
) -> Iterator[Top]:
    """The nearest data sets in ``wanted`` above ``ds_id`` (a cycle is cut)."""
    seen = {ds_id} if seen is None else seen
    for upper in above.get(ds_id, ()):
        if upper.id in seen:
            continue
        seen.add(upper.id)
        if upper.id in wanted:
            yield upper, ()
        else:
            for top, between in _nearest(upper.id, above, wanted, seen):
                yield top, (upper, *between)


def _kept(rules: Rules, cluster: str, ds_id: str) -> bool:
    found = rules.for_dataset(cluster, ds_id)
    forced = found is not None and found[1].include is True
    return forced or rules.protect_lower_layers


def _on_it(tops: list[Top]) -> str:
    """``filesystem fs_a lies on it [through lvm vg] and is`` (or ``... lie ... are``)."""
    if len(tops) == 1:
        top, between = tops[0]
        through = f" through {_names(between)}" if between else ""
        return f"{top.kind} {top.id}, which lies on it{through} and is"
    listed = ", ".join(
        f"{top.kind} {top.id}" + (f" (through {_names(between)})" if between else "")
        for top, between in tops
    )
    return f"{listed}, which lie on it and are"


def _names(datasets: tuple[DataSet, ...]) -> str:
    return ", ".join(f"{d.kind} {d.id}" for d in datasets)


def _excluded(cluster: Cluster, rules: Rules, ds: DataSet, tops: list[Top]) -> Excluded:
    if all(top.kind not in BLOCK_KINDS for top, _ in tops):
        what = "files are backed up rather than the blocks beneath them"
    else:
        what = "the layer on top is backed up rather than the blocks beneath it"
    because = (
        f"covered by {_on_it(tops)} protected: {what}; "
        f"{rules.provenance('protect_lower_layers', 'false')}"
    )
    return Excluded(cluster.name, ds.id, ds.kind, because, f"dataset {tops[0][0].id}")


def _kept_reason(cluster: Cluster, rules: Rules, ds: DataSet, tops: list[Top]) -> Reason:
    found = rules.for_dataset(cluster.name, ds.id)
    if found is not None and found[1].include is True:
        rule = rules.provenance(f"datasets.{found[0]}.include", "true")
    else:
        rule = rules.provenance("protect_lower_layers", "true")
    because = (
        f"lower layer of {_on_it(tops)} protected too; its blocks are backed up as well: {rule}"
    )
    return Reason(Decision.INCLUDE, because, f"dataset {tops[0][0].id}")


def _holds_reason(inner: DataSet) -> Reason:
    return Reason(
        Decision.INCLUDE,
        f"{inner.id} ({inner.kind}) lies inside it and is protected on its own",
        f"dataset {inner.id}",
    )


def _add_include(item: Item, *extra: Reason) -> Item:
    """``item`` with ``extra`` reasons right after its include reasons."""
    if not extra:
        return item
    reasons = list(item.reasons)
    last = max((i for i, r in enumerate(reasons) if r.decision is Decision.INCLUDE), default=-1)
    reasons[last + 1 : last + 1] = extra
    return replace(item, reasons=tuple(reasons))
