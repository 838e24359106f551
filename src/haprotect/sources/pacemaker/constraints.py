"""Order, colocation and ticket constraints as "A needs B" pairs.

Each pair reads *dependent needs required*: ``then`` needs ``first`` in an
order, ``rsc`` needs ``with-rsc`` in a colocation. Resource sets expand the
way Pacemaker documents them: inside a sequential set each member needs the
one before it; across sets, an order's later set needs the earlier one, and
a colocation's earlier set needs the later one. Negative colocations keep
resources apart and are not dependencies. References stay as written (they
may name groups, clones, tags or templates) and are expanded to primitives
by the topology builder.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from lxml import etree

from haprotect.sources.pacemaker.attributes import IdIndex, parse_score


@dataclass(frozen=True, slots=True)
class Constraint:
    """One constraint as the "A needs B" pairs it makes (see the module docstring)."""

    id: str
    kind: str  #: "order", "colocation" or "ticket"
    pairs: tuple[tuple[str, str], ...]  #: (dependent, required)
    #: role the required side must have ("Promoted" for a DRBD primary), if any
    required_role: str | None = None


_SET_READERS = {"rsc_order": "order", "rsc_colocation": "colocation", "rsc_ticket": "ticket"}


def read_constraints(
    constraints: etree._Element, ids: IdIndex, origin: str
) -> tuple[list[Constraint], dict[str, set[str]]]:
    out: list[Constraint] = []
    banned: dict[str, set[str]] = {}
    for raw in constraints:
        element = ids.resolve(raw)
        tag = element.tag
        if tag == "rsc_location":
            _read_ban(element, banned)
            continue
        kind = _SET_READERS.get(tag) if isinstance(tag, str) else None
        if kind is None:
            continue
        if kind == "colocation" and parse_score(element.get("score", "INFINITY")) < 0:
            continue
        constraint_id = element.get("id", "")
        sets = [ids.resolve(s) for s in element.iterfind("resource_set")]
        if kind == "ticket":
            pairs = _ticket_pairs(element, sets, ids)
            role = None
        elif sets:
            pairs = _set_pairs(sets, ids, later_needs_earlier=kind == "order")
            role = _promoted_role(*(s.get("role") for s in sets))
        elif kind == "order":
            pairs = _pair(element.get("then"), element.get("first"))
            role = "Promoted" if element.get("first-action") == "promote" else None
        else:
            pairs = _pair(element.get("rsc"), element.get("with-rsc"))
            role = _promoted_role(element.get("with-rsc-role"))
        if pairs:
            out.append(Constraint(constraint_id, kind, tuple(pairs), role))
    return out, banned


def _pair(dependent: str | None, required: str | None) -> list[tuple[str, str]]:
    return [(dependent, required)] if dependent and required else []


def _promoted_role(*roles: str | None) -> str | None:
    return "Promoted" if any(r in ("Master", "Promoted") for r in roles) else None


def _members(resource_set: etree._Element, ids: IdIndex) -> list[str]:
    return [ids.resolve(ref).get("id", "") for ref in resource_set.iterfind("resource_ref")]


def _set_pairs(
    sets: list[etree._Element], ids: IdIndex, *, later_needs_earlier: bool
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    members = [_members(s, ids) for s in sets]
    for resource_set, names in zip(sets, members, strict=True):
        if resource_set.get("sequential", "true").lower() not in ("false", "no", "0", "off"):
            pairs.extend(zip(names[1:], names[:-1], strict=True))
    for earlier, later in pairwise(members):
        for a in earlier:
            for b in later:
                pairs.append((b, a) if later_needs_earlier else (a, b))
    return pairs


def _ticket_pairs(
    element: etree._Element, sets: list[etree._Element], ids: IdIndex
) -> list[tuple[str, str]]:
    ticket = f"ticket:{element.get('ticket', '')}"
    names = [n for s in sets for n in _members(s, ids)] if sets else [element.get("rsc", "")]
    return [(name, ticket) for name in names if name]


def _read_ban(element: etree._Element, banned: dict[str, set[str]]) -> None:
    rsc, node = element.get("rsc"), element.get("node")
    if rsc and node and parse_score(element.get("score")) <= -1_000_000:
        banned.setdefault(rsc, set()).add(node)
