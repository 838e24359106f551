"""Dependency cycles between the tiers of a consistency group.

A tier that depends on itself, or tiers that depend on each other around a
loop, have no quiesce or restore order: the cycle itself is the problem to
name, not the order it makes impossible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol


class _Tier(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> Sequence[str]: ...


def dependency_cycles(tiers: Sequence[_Tier]) -> Iterator[tuple[int, int, list[str]]]:
    """Cycles as ``(tier index, depends_on index, [tier, ..., last before it])``.

    One depth-first walk (tiers in the order listed, dependencies in the
    order written) gives a cycle for each dependency that leads back to a
    tier still on its path, so every group with a cycle gets at least one.
    Each is given from its tier listed first, at that tier's ``depends_on``
    entry that leads around it. Names that are not tiers of the group are
    left to the other checks.
    """
    index = {tier.name: i for i, tier in enumerate(tiers)}
    finished: set[str] = set()
    given: set[tuple[str, ...]] = set()
    for tier in tiers:
        if tier.name in finished:
            continue
        path = [tier.name]
        stack = [iter(tier.depends_on)]
        while stack:
            below = next(stack[-1], None)
            if below is None:
                stack.pop()
                finished.add(path.pop())
            elif below in path:
                found = _from_first(path[path.index(below) :], tiers, index)
                if tuple(found[2]) not in given:
                    given.add(tuple(found[2]))
                    yield found
            elif below in index and below not in finished:
                path.append(below)
                stack.append(iter(tiers[index[below]].depends_on))


def _from_first(
    cycle: list[str], tiers: Sequence[_Tier], index: dict[str, int]
) -> tuple[int, int, list[str]]:
    first = min(cycle, key=index.__getitem__)
    at = cycle.index(first)
    cycle = cycle[at:] + cycle[:at]
    after = cycle[1] if len(cycle) > 1 else first
    return index[first], list(tiers[index[first]].depends_on).index(after), cycle
