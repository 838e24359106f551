"""What a main.cf defines, as typed records (no I/O, no interpretation).

Attribute values keep VCS's three shapes: a scalar (``Critical = 0``), a
list (``AutoStartList = { a, b }``) and an association
(``SystemList = { a = 0, b = 1 }``). A value may differ by system
(``Enabled @node01 = 0``): :meth:`Attributes.get` returns the system's own
value where one is set. Secret values are redacted before they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: A scalar, a list or an association, as written.
Value = str | tuple[str, ...] | dict[str, str]


@dataclass(frozen=True, slots=True)
class Where:
    """The file and line an object is defined at."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Attributes:
    """An object's attributes: values for every system, and per-system values."""

    values: dict[str, Value] = field(default_factory=dict)
    #: attribute -> system -> value (``Attr @system = value``)
    per_system: dict[str, dict[str, Value]] = field(default_factory=dict)

    def get(self, name: str, system: str | None = None) -> Value | None:
        if system is not None:
            local = self.per_system.get(name, {})
            if system in local:
                return local[system]
        return self.values.get(name)

    def text(self, name: str, system: str | None = None) -> str | None:
        """The scalar value of ``name`` (the first system's, when it differs by system)."""
        value = self.get(name, system)
        if value is None and system is None and name in self.per_system:
            value = next(iter(self.per_system[name].values()))
        return value if isinstance(value, str) else None

    def mapping(self, name: str) -> dict[str, str]:
        value = self.values.get(name)
        return dict(value) if isinstance(value, dict) else {}

    def items(self, name: str) -> tuple[str, ...]:
        """A list value, or an association's keys."""
        value = self.values.get(name)
        if isinstance(value, tuple):
            return value
        if isinstance(value, dict):
            return tuple(value)
        return (value,) if isinstance(value, str) and value else ()

    def localized(self, name: str) -> bool:
        return bool(self.per_system.get(name))


@dataclass(frozen=True, slots=True)
class VcsResource:
    """``Type name ( attributes )`` inside a group."""

    type: str
    name: str
    group: str
    attrs: Attributes
    where: Where

    def enabled(self) -> bool:
        return self.attrs.text("Enabled") != "0"

    def critical(self) -> bool:
        return self.attrs.text("Critical") != "0"


@dataclass(frozen=True, slots=True)
class GroupDependency:
    """``requires group child category location [kind]`` in group ``parent``."""

    parent: str
    child: str
    category: str  #: online or offline
    location: str  #: local, global or remote
    kind: str  #: soft, firm, hard, or "" when not written
    where: Where

    @property
    def words(self) -> str:
        return " ".join(w for w in (self.category, self.location, self.kind) if w)


@dataclass(slots=True)
class ServiceGroup:
    """``group name ( attributes )`` with its resources and links."""

    name: str
    attrs: Attributes
    where: Where
    resources: list[str] = field(default_factory=list)
    #: (resource that requires, resource it requires)
    links: list[tuple[str, str, Where]] = field(default_factory=list)

    @property
    def parallel(self) -> bool:
        return (self.attrs.text("Parallel") or "0") not in ("0", "")

    def systems(self) -> list[str]:
        """The ``SystemList``, by priority (lowest number first, then as written)."""
        listed = self.attrs.get("SystemList")
        if isinstance(listed, dict):
            order = list(listed)
            return sorted(order, key=lambda s: (_number(listed[s]), order.index(s)))
        return list(listed) if isinstance(listed, tuple) else []

    def autostart(self) -> list[str]:
        return list(self.attrs.items("AutoStartList"))

    def clusters(self) -> list[str]:
        """The ``ClusterList`` of a global group, by priority; empty for a local one."""
        listed = self.attrs.mapping("ClusterList")
        order = list(listed)
        return sorted(order, key=lambda c: (_number(listed[c]), order.index(c)))

    def enabled_on(self, system: str) -> bool:
        return self.attrs.get("Enabled", system) != "0"


@dataclass(slots=True)
class MainCf:
    """A main.cf and the files it includes."""

    origin: str
    cluster_name: str | None = None
    cluster_attrs: Attributes = field(default_factory=Attributes)
    systems: list[str] = field(default_factory=list)
    groups: dict[str, ServiceGroup] = field(default_factory=dict)
    resources: dict[str, VcsResource] = field(default_factory=dict)
    group_dependencies: list[GroupDependency] = field(default_factory=list)
    #: resource type -> the attribute names its definition declares
    types: dict[str, frozenset[str]] = field(default_factory=dict)
    #: included files that could not be found (their types are then not known)
    missing_includes: list[str] = field(default_factory=list)


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 1 << 30
