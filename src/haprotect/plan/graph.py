"""The dependency graph of an application's tiers, and the orders it gives.

A tier ``depends_on`` the tiers it needs (the front end on the application,
the application on the database). Restoring goes bottom-up: a tier after
everything it depends on. Quiescing goes top-down: the reverse, so that a
tier stops taking writes before the tiers it writes to are quiesced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Edges = Mapping[str, Sequence[str]]  #: tier -> the tiers it depends on


class CycleError(ValueError):
    """The tiers depend on each other in a cycle, so they have no order."""


def restore_order(edges: Edges) -> tuple[str, ...]:
    """Every tier after the tiers it depends on; ties keep the order of ``edges``.

    Dependencies on tiers that are not in ``edges`` are ignored.
    """
    names = list(edges)
    known = set(names)
    done: list[str] = []
    placed: set[str] = set()
    while len(done) < len(names):
        ready = [
            n
            for n in names
            if n not in placed and all(d in placed or d not in known for d in edges[n])
        ]
        if not ready:
            left = ", ".join(n for n in names if n not in placed)
            raise CycleError(f"the tiers {left} depend on each other in a cycle")
        done.append(ready[0])
        placed.add(ready[0])
    return tuple(done)


def quiesce_order(edges: Edges) -> tuple[str, ...]:
    return tuple(reversed(restore_order(edges)))


def order_problems(order: Sequence[str], edges: Edges) -> list[str]:
    """Why ``order`` is not a valid restore order of ``edges`` (empty when it is)."""
    problems: list[str] = []
    if sorted(order) != sorted(edges):
        problems.append(f"the order {list(order)} does not list every tier once")
        return problems
    position = {name: i for i, name in enumerate(order)}
    for name, needs in edges.items():
        for need in needs:
            if need in position and position[need] > position[name]:
                problems.append(f"{name!r} depends on {need!r}, so it is restored after it")
    return problems


def dependents(failed: Iterable[str], edges: Edges) -> set[str]:
    """The tiers that depend, directly or through others, on any of ``failed``."""
    hit = set(failed)
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, needs in edges.items():
            if name not in found and name not in hit and any(n in hit | found for n in needs):
                found.add(name)
                changed = True
    return found
