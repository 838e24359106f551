"""Tier order and tier dependencies of one application in a topology file.

Tiers may be written in any order; the model lists them bottom-up, every
tier after the tiers it ``depends_on``. Among tiers whose dependencies are
met, the one written first comes first, so a file already written bottom-up
keeps its order.
"""

from __future__ import annotations

from collections.abc import Sequence

from haprotect.errors import HaprotectError
from haprotect.model.topology import Dependency, Tier
from haprotect.yamlsource import Loc, YamlDocument


def order_tiers(doc: YamlDocument, app_loc: Loc, tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """``tiers`` (in file order, references checked) sorted bottom-up.

    A dependency cycle is an error at the ``depends_on`` entry of the first
    tier in the cycle.
    """
    done: set[str] = set()
    ordered: list[Tier] = []
    remaining = list(tiers)
    while remaining:
        ready = next((t for t in remaining if set(t.depends_on) <= done), None)
        if ready is None:
            raise _cycle_error(doc, app_loc, tiers, {t.name for t in remaining})
        ordered.append(ready)
        done.add(ready.name)
        remaining.remove(ready)
    return tuple(ordered)


def tier_dependencies(tiers: Sequence[Tier]) -> list[Dependency]:
    """One ``tier`` dependency from each resource of a tier to each of a tier it depends on."""
    by_name = {t.name: t for t in tiers}
    out: list[Dependency] = []
    for tier in tiers:
        for below in tier.depends_on:
            for source in tier.resources:
                for target in by_name[below].resources:
                    if source != target:
                        out.append(Dependency(source, target, "tier"))
    return out


def _cycle_error(
    doc: YamlDocument, app_loc: Loc, tiers: Sequence[Tier], stuck: set[str]
) -> HaprotectError:
    """Every stuck tier waits on another stuck tier, so following them finds a cycle."""
    by_name = {t.name: t for t in tiers}
    path: list[str] = []
    current = next(t.name for t in tiers if t.name in stuck)
    while current not in path:
        path.append(current)
        current = next(d for d in by_name[current].depends_on if d in stuck)
    cycle = path[path.index(current) :]
    index = {t.name: i for i, t in enumerate(tiers)}
    first = min(cycle, key=index.__getitem__)
    position = cycle.index(first)
    cycle = cycle[position:] + cycle[:position]
    after = cycle[1] if len(cycle) > 1 else first
    dep_index = by_name[first].depends_on.index(after)
    loc = (*app_loc, "tiers", index[first], "depends_on", dep_index)
    return doc.error_at(loc, "dependency cycle: " + " -> ".join([*cycle, first]))
