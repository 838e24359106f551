"""The configuration section of a CIB, read into plain typed records.

This is Pacemaker's *definition* of the cluster: primitives (with templates
and id-refs resolved, instance attribute sets merged by score), the groups,
clones, promotable clones and bundles that hold them, constraints (with
resource sets, tags and templates expanded to primitives) and tags. Where
resources run now is read separately (see state.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from haprotect.errors import ClusterConfigError, located
from haprotect.sources.pacemaker.attributes import IdIndex, merged_attributes
from haprotect.sources.pacemaker.constraints import Constraint, read_constraints
from haprotect.sources.pacemaker.xml import line_of

CONTAINER_TAGS = ("group", "clone", "master", "bundle")


@dataclass(frozen=True, slots=True)
class Primitive:
    """One primitive of the CIB, its parameters merged; ``line`` locates it for messages."""

    id: str
    agent: str  #: class:provider:type, as crm_mon prints it
    type: str
    params: dict[str, str]
    parent: str | None
    line: int | None
    #: instance attributes that only apply under a rule (node or date specific)
    conditional: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StorageMapping:
    """A bundle's storage mapping: a host directory mounted into the container."""

    id: str
    source: str
    target: str
    read_write: bool


@dataclass(frozen=True, slots=True)
class Container:
    """A group, clone, promotable clone or bundle."""

    id: str
    kind: str  #: "group", "clone", "promotable" or "bundle"
    members: tuple[str, ...]  #: direct children, primitives or containers
    parent: str | None
    meta: dict[str, str]
    line: int | None
    storage: tuple[StorageMapping, ...] = ()


@dataclass(slots=True)
class CibConfig:
    """What the configuration section defines, with every reference resolved to primitives."""

    origin: str
    cluster_name: str | None = None
    nodes: list[tuple[str, str]] = field(default_factory=list)  #: (id, uname)
    primitives: dict[str, Primitive] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    constraints: list[Constraint] = field(default_factory=list)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: template id -> primitives made from it
    templated: dict[str, list[str]] = field(default_factory=dict)
    #: resource id -> nodes it may never run on (-INFINITY location)
    banned: dict[str, set[str]] = field(default_factory=dict)

    def primitives_of(self, resource_id: str) -> list[str]:
        """Every primitive in a resource, tag or template (itself, if a primitive)."""
        if resource_id in self.primitives:
            return [resource_id]
        if resource_id in self.containers:
            out: list[str] = []
            for member in self.containers[resource_id].members:
                out.extend(self.primitives_of(member))
            return out
        if resource_id in self.tags:
            out = []
            for ref in self.tags[resource_id]:
                out.extend(self.primitives_of(ref))
            return out
        return list(self.templated.get(resource_id, ()))

    def ancestors(self, primitive_id: str) -> Iterator[Container]:
        parent = self.primitives[primitive_id].parent
        while parent is not None:
            container = self.containers[parent]
            yield container
            parent = container.parent

    def promotable_parent(self, primitive_id: str) -> Container | None:
        return next((c for c in self.ancestors(primitive_id) if c.kind == "promotable"), None)

    def clone_parent(self, primitive_id: str) -> Container | None:
        return next(
            (c for c in self.ancestors(primitive_id) if c.kind in ("clone", "promotable")), None
        )


def read_config(cib: etree._Element, origin: str) -> CibConfig:
    if cib.tag != "cib":
        raise ClusterConfigError(
            located(origin, line_of(cib), f"not a CIB: root element is <{cib.tag}>, not <cib>")
        )
    configuration = cib.find("configuration")
    if configuration is None:
        raise ClusterConfigError(located(origin, line_of(cib), "CIB has no <configuration>"))
    ids = IdIndex(configuration, origin)
    config = CibConfig(origin=origin)
    config.cluster_name = _cluster_name(configuration, ids)
    for node in configuration.iterfind("nodes/node"):
        node_id = node.get("id") or node.get("uname") or ""
        config.nodes.append((node_id, node.get("uname") or node_id))
    resources = configuration.find("resources")
    if resources is not None:
        templates = {t.get("id", ""): t for t in resources.iterfind("template")}
        for element in resources:
            _read_resource(config, ids, templates, ids.resolve(element), None)
    for tag in configuration.iterfind("tags/tag"):
        config.tags[tag.get("id", "")] = tuple(r.get("id", "") for r in tag.iterfind("obj_ref"))
    constraints = configuration.find("constraints")
    if constraints is not None:
        config.constraints, config.banned = read_constraints(constraints, ids, origin)
    return config


def _cluster_name(configuration: etree._Element, ids: IdIndex) -> str | None:
    for props in configuration.iterfind("crm_config/cluster_property_set"):
        for nvpair in ids.resolve(props).iterfind("nvpair"):
            if nvpair.get("name") == "cluster-name" and nvpair.get("value"):
                return nvpair.get("value")
    return None


def _agent(element: etree._Element) -> tuple[str, str]:
    cls, provider, kind = element.get("class", ""), element.get("provider"), element.get("type", "")
    agent = f"{cls}:{provider}:{kind}" if provider else f"{cls}:{kind}"
    return agent, kind


def _read_resource(
    config: CibConfig,
    ids: IdIndex,
    templates: dict[str, etree._Element],
    element: etree._Element,
    parent: str | None,
) -> str | None:
    tag = element.tag
    resource_id = element.get("id")
    if tag not in ("primitive", *CONTAINER_TAGS) or not isinstance(tag, str):
        return None
    if not resource_id:
        raise ClusterConfigError(located(config.origin, line_of(element), f"<{tag}> has no id"))
    if resource_id in config.primitives or resource_id in config.containers:
        raise ClusterConfigError(
            located(config.origin, line_of(element), f"resource id {resource_id!r} is used twice")
        )
    if tag == "primitive":
        config.primitives[resource_id] = _read_primitive(config, ids, templates, element, parent)
        return resource_id
    meta = merged_attributes(element, "meta_attributes", ids).values
    kind = tag
    if tag == "master" or (tag == "clone" and meta.get("promotable", "").lower() in _TRUE):
        kind = "promotable"
    members: list[str] = []
    for child in element:
        member = _read_resource(config, ids, templates, ids.resolve(child), resource_id)
        if member is not None:
            members.append(member)
    storage = tuple(_storage_mappings(element)) if tag == "bundle" else ()
    config.containers[resource_id] = Container(
        resource_id, kind, tuple(members), parent, meta, line_of(element), storage
    )
    return resource_id


_TRUE = ("true", "yes", "1", "on", "y")


def _read_primitive(
    config: CibConfig,
    ids: IdIndex,
    templates: dict[str, etree._Element],
    element: etree._Element,
    parent: str | None,
) -> Primitive:
    resource_id = element.get("id", "")
    source = element
    template_id = element.get("template")
    params = merged_attributes(element, "instance_attributes", ids)
    if template_id is not None:
        template = templates.get(template_id)
        if template is None:
            raise ClusterConfigError(
                located(
                    config.origin,
                    line_of(element),
                    f"primitive {resource_id!r} uses unknown template {template_id!r}",
                )
            )
        config.templated.setdefault(template_id, []).append(resource_id)
        params = merged_attributes(template, "instance_attributes", ids).overlaid_by(params)
        if not element.get("type"):
            source = template
    agent, kind = _agent(source)
    return Primitive(
        id=resource_id,
        agent=agent,
        type=kind,
        params=params.values,
        parent=parent,
        line=line_of(element),
        conditional=params.conditional,
    )


def _storage_mappings(bundle: etree._Element) -> Iterator[StorageMapping]:
    for mapping in bundle.iterfind("storage/storage-mapping"):
        options = {o.strip() for o in (mapping.get("options") or "").split(",")}
        yield StorageMapping(
            id=mapping.get("id", ""),
            source=mapping.get("source-dir") or mapping.get("source-dir-root") or "",
            target=mapping.get("target-dir", ""),
            read_write="ro" not in options,
        )
