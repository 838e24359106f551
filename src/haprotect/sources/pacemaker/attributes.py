"""Name/value attribute sets of a CIB, merged the way Pacemaker merges them.

An element may carry several ``instance_attributes`` (or ``meta_attributes``)
sets. Pacemaker applies them highest ``score`` first, document order among
equals, and the first set that defines a name wins. A set guarded by a
``<rule>`` applies only where the rule holds (a node, a date); its values are
kept but marked conditional, since a backup policy cannot assume either.
Any element may be an ``id-ref`` to another; :class:`IdIndex` resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from haprotect.errors import ClusterConfigError, located
from haprotect.redact import redact_value
from haprotect.sources.pacemaker.xml import line_of

INFINITY = 1_000_000


class IdIndex:
    """Resolves ``id-ref`` attributes; built on first use, since most CIBs have none."""

    def __init__(self, root: etree._Element, origin: str) -> None:
        self._root = root
        self._origin = origin
        self._by_id: dict[str, etree._Element] | None = None

    def resolve(self, element: etree._Element) -> etree._Element:
        ref = element.get("id-ref")
        if ref is None:
            return element
        if self._by_id is None:
            self._by_id = {}
            for el in self._root.iter():
                el_id = el.get("id")
                if el_id is not None and el.get("id-ref") is None:
                    self._by_id.setdefault(el_id, el)
        target = self._by_id.get(ref)
        if target is None:
            raise ClusterConfigError(
                located(self._origin, line_of(element), f"id-ref {ref!r} names no element")
            )
        return target


def parse_score(text: str | None) -> int:
    if text is None or text == "":
        return 0
    text = text.strip()
    if text in ("INFINITY", "+INFINITY"):
        return INFINITY
    if text == "-INFINITY":
        return -INFINITY
    try:
        return max(-INFINITY, min(INFINITY, int(text)))
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class AttributeSet:
    """An element's attribute sets, merged; ``conditional`` names the values under a rule."""

    values: dict[str, str]
    conditional: frozenset[str] = frozenset()

    def overlaid_by(self, other: AttributeSet) -> AttributeSet:
        """``other`` wins where both define a name (a primitive over its template)."""
        values = {**self.values, **other.values}
        conditional = (self.conditional - other.values.keys()) | other.conditional
        return AttributeSet(values, frozenset(conditional))


def merged_attributes(element: etree._Element, set_tag: str, ids: IdIndex) -> AttributeSet:
    sets = [ids.resolve(s) for s in element.iterfind(set_tag)]
    if not sets:
        return AttributeSet({})
    ranked = sorted(enumerate(sets), key=lambda pair: (-parse_score(pair[1].get("score")), pair[0]))
    values: dict[str, str] = {}
    conditional: set[str] = set()
    for _, attr_set in ranked:
        guarded = attr_set.find("rule") is not None
        for raw in attr_set.iterfind("nvpair"):
            nvpair = ids.resolve(raw)
            name = nvpair.get("name")
            if name is None or name in values:
                continue
            values[name] = redact_value(name, nvpair.get("value") or "")
            if guarded:
                conditional.add(name)
    return AttributeSet(values, frozenset(conditional))
