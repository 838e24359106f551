"""What the status reader needs from a CIB's ``<configuration>``.

Only the facts that change how Pacemaker reads resource history: which
primitives exist and where (clones, promotable clones, bundles), which nodes
exist (cluster, remote, guest and bundle nodes), whether a resource is
managed, its ``on-fail`` policies and ``failure-timeout``, and the cluster
options that matter (fencing, maintenance mode, orphan handling, quorum).
Names follow Pacemaker's ``lib/pengine`` (2.1), which this mirrors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from lxml import etree

from haprotect.sources.pacemaker.state import strip_instance

_TRUE = frozenset({"true", "on", "yes", "y", "1"})
_UNITS = {"ms": 1, "msec": 1, "us": 0.001, "usec": 0.001, "": 1000, "s": 1000, "sec": 1000}
_UNITS |= {"m": 60_000, "min": 60_000, "h": 3_600_000, "hr": 3_600_000}
_SPEC = re.compile(r"\s*(\d+)\s*([a-z]*)\s*$")
_ISO = re.compile(
    r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)
_ISO_MS = (31_536_000_000, 2_592_000_000, 604_800_000, 86_400_000, 3_600_000, 60_000, 1000)


def is_true(value: str | None) -> bool:
    return value is not None and value.lower() in _TRUE


def crm_int(value: str | None, default: int) -> int:
    """An integer attribute: ``default`` when absent, -1 when unparsable (as Pacemaker)."""
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return -1


def interval_ms(spec: str | None) -> int:
    """``crm_parse_interval_spec``: ``10``, ``10s``, ``5min``, ``PT10S`` -> milliseconds."""
    if not spec:
        return 0
    iso = _ISO.match(spec.strip())
    if iso:
        return sum(int(v) * k for v, k in zip(iso.groups(), _ISO_MS, strict=True) if v)
    match = _SPEC.match(spec.lower())
    if not match or match.group(2) not in _UNITS:
        return 0
    return int(int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(slots=True)
class Primitive:
    """A primitive as the history sees it (one entry per configured id)."""

    id: str
    promotable: bool = False
    #: "anonymous" or "unique" for a clone's primitive, None otherwise
    clone: str | None = None
    clone_max: int = 0
    #: guest nodes of the bundle holding this primitive, if it is a bundle's child
    bundle_nodes: frozenset[str] | None = None
    bundled: bool = False
    managed: bool = True
    container: str | None = None
    remote: bool = False
    reconnect: bool = False
    multiple_block: bool = False
    failure_timeout: int = 0
    ops: list[etree._Element] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class ClusterNode:
    """A node as the status reader sees it: its kind, and its state from the status section."""

    id: str
    name: str
    kind: str  # member, remote or ping
    conn: str | None = None
    is_guest: bool = False
    attrs: dict[str, str] = field(default_factory=dict)
    online: bool = False
    unclean: bool = False
    shutdown: bool = False
    maintenance: bool = False
    unpacked: bool = False
    requires_reset: bool = False
    was_fenced: bool = False
    #: fail counts by resource, indexed on first use
    failures: dict[str, list[tuple[bool, str, bool, str]]] | None = None


@dataclass(slots=True)
class Config:
    """The facts of ``<configuration>`` that the status reader needs (see the module docstring)."""

    props: dict[str, str]
    rsc_defaults: dict[str, str]
    op_defaults: dict[str, str]
    have_quorum: bool = False
    legacy_failcounts: bool = False
    nodes: list[ClusterNode] = field(default_factory=list)
    prims: dict[str, Primitive] = field(default_factory=dict)
    has_fencing_device: bool = False
    bundle_ips: dict[str, Primitive] = field(default_factory=dict)
    orphans: dict[str, Primitive] = field(default_factory=dict)
    _by_id: dict[str, ClusterNode] = field(default_factory=dict)
    _by_name: dict[str, ClusterNode] = field(default_factory=dict)

    @property
    def stonith(self) -> bool:
        return is_true(self.props.get("stonith-enabled", "true"))

    @property
    def shutdown_lock(self) -> bool:
        return is_true(self.props.get("shutdown-lock"))

    @property
    def no_quorum_ignore(self) -> bool:
        return self.props.get("no-quorum-policy") == "ignore"

    def add_node(self, node: ClusterNode) -> ClusterNode:
        self.nodes.append(node)
        self._by_id.setdefault(node.id.lower(), node)
        self._by_name.setdefault(node.name.lower(), node)
        return node

    def find_node(self, node_id: str, uname: str) -> ClusterNode | None:
        """``pe_find_node_any``: by id, then by name."""
        return self._by_id.get(node_id.lower()) or self._by_name.get(uname.lower())

    def node_named(self, name: str) -> ClusterNode | None:
        return self._by_name.get(name.lower())

    def sorted_nodes(self) -> list[ClusterNode]:
        """Nodes in crm_mon's order: by name, numbers compared as numbers."""
        return sorted(self.nodes, key=lambda n: _natural(n.name))

    def managed(self, meta: dict[str, str]) -> bool:
        maintenance_mode = is_true(self.props.get("maintenance-mode"))
        managed = is_true(self.props.get("is-managed-default", "true"))
        value = meta.get("is-managed")
        if value is not None and value.lower() != "default":
            managed = is_true(value)
        return managed and not is_true(meta.get("maintenance")) and not maintenance_mode

    def resolve(self, rsc_id: str, node_name: str) -> tuple[Primitive | None, str]:
        """``unpack_find_resource``: the primitive a history id means on a node,
        and the key of its instance; no primitive means an orphan."""
        prim = self.prims.get(rsc_id)
        if prim is not None and prim.clone is None:
            return prim, rsc_id
        if prim is None:
            base = strip_instance(rsc_id)
            prim = self.prims.get(base) if base != rsc_id else None
            if prim is None or prim.clone is None:
                return self.bundle_ips.get(rsc_id.rpartition("-ip-")[0]), rsc_id
            if prim.clone == "unique":
                number = rsc_id.rpartition(":")[2]
                return (prim if int(number) < prim.clone_max else None), rsc_id
        elif prim.clone == "unique":
            return None, rsc_id
        if prim.bundle_nodes is not None and node_name not in prim.bundle_nodes:
            return None, rsc_id
        return prim, f"{prim.id}\0{node_name}"

    def orphan(self, rsc_id: str, entry: etree._Element) -> Primitive:
        """A history entry whose resource is no longer configured; an orphaned
        remote connection still makes its (shutting down) node exist."""
        prim = self.orphans.get(rsc_id)
        if prim is None:
            managed = self.managed(self.rsc_defaults) and is_true(
                self.props.get("stop-orphan-resources", "true")
            )
            prim = Primitive(rsc_id, managed=managed, container=entry.get("container"))
            prim.remote = _is_remote(entry.get("class"), entry.get("provider"), entry.get("type"))
            self.orphans[rsc_id] = prim
            if prim.remote and self.node_named(rsc_id) is None:
                node = ClusterNode(rsc_id, rsc_id, "remote", conn=rsc_id, shutdown=True)
                node.is_guest = prim.container is not None
                self.add_node(node)
        return prim

    def connection(self, node: ClusterNode) -> Primitive | None:
        """The remote connection resource behind a remote or guest node."""
        prim = self.prims.get(node.conn) if node.conn else None
        if prim is not None and prim.remote:
            return prim
        return self.orphans.get(node.conn) if node.conn else None


def parse_config(cib: etree._Element) -> Config:
    """Read the configuration facts; anything missing takes Pacemaker's default."""
    conf = cib.find("configuration")
    if conf is None:
        conf = etree.Element("configuration")
    config = Config(
        props=nvsets(conf.find("crm_config"), "cluster_property_set", "cib-bootstrap-options"),
        rsc_defaults=nvsets(conf.find("rsc_defaults"), "meta_attributes"),
        op_defaults=nvsets(conf.find("op_defaults"), "meta_attributes"),
        have_quorum=is_true(cib.get("have-quorum")),
        legacy_failcounts=_version(cib.get("crm_feature_set")) < (3, 0, 13),
    )
    for el in conf.iterfind("nodes/node"):
        node_id, uname = el.get("id"), el.get("uname")
        if node_id and uname:
            kind = (el.get("type") or "member").lower()
            kind = (
                "member" if kind == "normal" else kind if kind in ("member", "remote") else "ping"
            )
            node = config.add_node(ClusterNode(node_id, uname, kind))
            node.attrs.update(nvsets(el, "instance_attributes"))
    _Resources(config, conf).walk()
    return config


class _Resources:
    """Walks ``<resources>`` into primitives and the nodes they create."""

    def __init__(self, config: Config, conf: etree._Element) -> None:
        self.config = config
        self.templates = {t.get("id"): t for t in conf.iterfind("resources/template")}
        self.top = conf.find("resources")

    def walk(self) -> None:
        if self.top is None:
            return
        for el in self.top:
            self.resource(el, self.config.rsc_defaults, None, True)
        for node in self.config.nodes:
            conn = self.config.prims.get(node.conn or node.name) if node.kind == "remote" else None
            if conn is not None and conn.remote:
                node.conn, node.is_guest = conn.id, conn.container is not None

    def resource(
        self, el: etree._Element, parent: dict[str, str], clone: Primitive | None, top: bool
    ) -> None:
        meta, own = _meta(el, parent)
        if el.tag == "primitive":
            self.primitive(el, meta, own, clone, top)
        elif el.tag == "group":
            for child in el.iterchildren("primitive"):
                child_meta, child_own = _meta(child, meta)
                self.primitive(child, child_meta, child_own, clone, top and clone is None)
        elif el.tag in ("clone", "master"):
            unique = is_true(meta.get("globally-unique"))
            proto = Primitive("", clone="unique" if unique else "anonymous")
            proto.promotable = el.tag == "master" or is_true(meta.get("promotable"))
            proto.clone_max = crm_int(meta.get("clone-max"), len(self.config.nodes))
            for child in el:
                if child.tag in ("primitive", "group"):
                    self.resource(child, meta, proto, False)
        elif el.tag == "bundle":
            self.bundle(el, meta)

    def primitive(
        self,
        el: etree._Element,
        meta: dict[str, str],
        own: dict[str, str],
        clone: Primitive | None,
        top: bool,
    ) -> Primitive | None:
        """One primitive; ``own`` are its own meta-attributes (guest nodes
        are declared there, not inherited)."""
        rsc_id = el.get("id")
        if not rsc_id:
            return None
        tmpl = self.templates.get(el.get("template"))
        attrs = {**_attrib(tmpl), **_attrib(el)}
        cls = attrs.get("class")
        prim = Primitive(rsc_id, managed=self.config.managed(meta))
        if clone is not None:
            prim.clone, prim.clone_max, prim.promotable = (
                clone.clone,
                clone.clone_max,
                clone.promotable,
            )
        prim.remote = _is_remote(cls, attrs.get("provider"), attrs.get("type"))
        prim.reconnect = interval_ms(meta.get("reconnect_interval")) > 0
        prim.multiple_block = meta.get("multiple-active") == "block"
        prim.failure_timeout = interval_ms(meta.get("failure-timeout")) // 1000
        container = meta.get("container")
        prim.container = container if container and container != rsc_id else None
        for source in (el, tmpl):
            operations = None if source is None else source.find("operations")
            if operations is not None:
                prim.ops.extend(operations.iterchildren("op"))
        self.config.has_fencing_device |= cls == "stonith"
        self.config.prims.setdefault(rsc_id, prim)
        if top and prim.remote and self.config.node_named(rsc_id) is None:
            self.config.add_node(ClusterNode(rsc_id, rsc_id, "remote", conn=rsc_id))
        guest = own.get("remote-node")
        if guest and top:
            raw = own.get("is-managed")
            conn_meta = {**self.config.rsc_defaults, **({"is-managed": raw} if raw else {})}
            conn = Primitive(guest, managed=self.config.managed(conn_meta), remote=True)
            conn.container = rsc_id
            self.config.prims.setdefault(guest, conn)
            if self.config.node_named(guest) is None:
                self.config.add_node(ClusterNode(guest, guest, "remote", conn=guest))
        return prim

    def bundle(self, el: etree._Element, meta: dict[str, str]) -> None:
        bundle_id = el.get("id", "")
        runtime = next((c for c in el if c.tag in ("docker", "rkt", "podman")), None)
        if not bundle_id or runtime is None:
            return
        promoted = crm_int(runtime.get("promoted-max") or runtime.get("masters"), 0)
        replicas = crm_int(runtime.get("replicas"), promoted if promoted > 0 else 1)
        network = el.find("network")
        has_net = network is not None and bool(
            network.get("ip-range-start") or network.get("control-port")
        )
        child = el.find("primitive")
        managed = self.config.managed(meta)
        guests = []
        for i in range(replicas):
            box = f"{bundle_id}-{runtime.tag}-{i}"
            self.config.prims.setdefault(box, Primitive(box, bundled=True, managed=managed))
            if child is not None and has_net:
                name = f"{bundle_id}-{i}"
                conn = Primitive(name, bundled=True, managed=managed, remote=True, container=box)
                self.config.prims.setdefault(name, conn)
                guests.append(name)
                if self.config.node_named(name) is None:
                    self.config.add_node(ClusterNode(name, name, "remote", conn=name))
        self.config.bundle_ips[bundle_id] = Primitive(
            f"{bundle_id}-ip", bundled=True, managed=managed
        )
        if child is not None:
            child_meta, child_own = _meta(child, meta)
            promotable = promoted > 0 or is_true(meta.get("promotable"))
            proto = Primitive("", clone="anonymous", promotable=promotable)
            prim = self.primitive(child, child_meta, child_own, proto, False)
            if prim is not None:
                prim.bundled, prim.bundle_nodes = True, frozenset(guests)


def _attrib(el: etree._Element | None) -> dict[str, str]:
    # parsed attributes are always str; the stubs also allow bytes
    return {} if el is None else cast("dict[str, str]", dict(el.attrib.items()))


def _meta(el: etree._Element, parent: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``get_meta_attributes``: XML attributes, then own meta sets, then the
    parent's; and the own meta sets alone."""
    own = nvsets(el, "meta_attributes")
    return {**parent, **own, **_attrib(el)}, own


def _is_remote(cls: str | None, provider: str | None, agent: str | None) -> bool:
    return (
        (cls or "").lower() == "ocf"
        and (provider or "").lower() == "pacemaker"
        and (agent or "").lower() == "remote"
    )


def nvsets(parent: etree._Element | None, tag: str, first: str | None = None) -> dict[str, str]:
    """Name/value pairs of ``parent``'s ``tag`` sets; earlier sets win, rules are skipped."""
    values: dict[str, str] = {}
    if parent is None:
        return values
    sets = [s for s in parent.iterfind(tag) if s.find("rule") is None]
    sets.sort(key=lambda s: (s.get("id") != first, -crm_int(s.get("score"), 0)))
    for nvset in sets:
        for pair in nvset.iterfind("nvpair"):
            name, value = pair.get("name"), pair.get("value")
            if name is not None and value is not None:
                values.setdefault(name, value)
    return values


def _version(text: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in (text or "").split("."))
    except ValueError:
        return ()


def _natural(name: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name.lower())]
