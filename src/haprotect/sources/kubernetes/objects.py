"""The Kubernetes objects the source reads, as typed records.

Objects arrive as ``kubectl get -o json`` prints them (or as the API lists
them, each tagged with its kind): only the kinds in :data:`READ` are looked
at. Every other kind (Secrets above all) is passed over unread, so that no
secret's data is ever parsed, kept or printed. A field of a read object that
has the wrong type is refused in one line naming the object and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from haprotect.errors import ClusterConfigError, located
from haprotect.sources.kubernetes.fields import Fields

CNPG = "postgresql.cnpg.io"
ZALANDO = "acid.zalan.do"
CRUNCHY = "postgres-operator.crunchydata.com"

#: (API group, kind) of every kind the source reads; "" is the core group.
READ = frozenset(
    {
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "Pod"),
        ("", "Service"),
        ("storage.k8s.io", "StorageClass"),
        ("apps", "StatefulSet"),
        ("apps", "Deployment"),
        ("policy", "PodDisruptionBudget"),
        (CNPG, "Cluster"),
        (ZALANDO, "postgresql"),
        (CRUNCHY, "PostgresCluster"),
    }
)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry of a label or node selector."""

    key: str
    operator: str
    values: tuple[str, ...]

    def holds(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "In":
            return value in self.values
        if self.operator == "NotIn":
            return value not in self.values
        if self.operator == "Exists":
            return value is not None
        if self.operator == "DoesNotExist":
            return value is None
        return False  # Gt, Lt and unknown operators: not relied on


@dataclass(frozen=True, slots=True)
class Selector:
    """A label selector; an empty one selects nothing (as a workload's never is)."""

    match: dict[str, str] = field(default_factory=dict)
    expressions: tuple[Requirement, ...] = ()

    def selects(self, labels: Mapping[str, str]) -> bool:
        if not self.match and not self.expressions:
            return False
        return all(labels.get(k) == v for k, v in self.match.items()) and all(
            r.holds(labels) for r in self.expressions
        )


@dataclass(frozen=True, slots=True)
class Meta:
    """What every object has: kind, place, name, labels and the objects that own it."""

    group: str
    kind: str
    namespace: str
    name: str
    labels: dict[str, str]
    owners: tuple[tuple[str, str], ...]  #: (kind, name) of ownerReferences

    @property
    def ref(self) -> str:
        place = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {place}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    ready: bool
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class Volume:
    """A PersistentVolume: where its data lives."""

    name: str
    storage_class: str
    source: str  #: the volume source's field name: csi, nfs, local, hostPath, ...
    driver: str  #: the CSI driver, when ``source`` is csi
    affinity: tuple[tuple[Requirement, ...], ...]  #: nodeSelectorTerms, any of which may hold
    claim: tuple[str, str] | None  #: (namespace, name) of the claim bound to it


@dataclass(frozen=True, slots=True)
class StorageClass:
    name: str
    provisioner: str


@dataclass(frozen=True, slots=True)
class Claim:
    meta: Meta
    storage_class: str
    volume: str
    phase: str
    access_modes: tuple[str, ...]
    volume_mode: str
    size: str


@dataclass(frozen=True, slots=True)
class PodInfo:
    meta: Meta
    node: str
    phase: str
    claims: tuple[str, ...]
    env: tuple[str, ...]  #: literal env values, only searched for Service names, never kept


@dataclass(frozen=True, slots=True)
class Workload:
    """A StatefulSet or Deployment: its pod template's labels, claims and images."""

    meta: Meta
    selector: Selector
    template_labels: dict[str, str]
    replicas: int
    claim_templates: tuple[str, ...]
    claims: tuple[str, ...]  #: claims the pod template names (the same for every pod)
    images: tuple[str, ...]
    env: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Budget:
    """A PodDisruptionBudget."""

    meta: Meta
    selector: Selector
    min_available: str
    max_unavailable: str


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    meta: Meta
    type: str
    selector: dict[str, str]


@dataclass(frozen=True, slots=True)
class PgCluster:
    """A PostgreSQL operator's cluster object (CloudNativePG, Zalando or Crunchy)."""

    meta: Meta
    instances: int
    current_primary: str  #: CloudNativePG's status.currentPrimary (a pod name)
    target_primary: str
    phase: str
    version: str


@dataclass(slots=True)
class Objects:
    """Every object read, by kind, and where they came from (a file or an API server)."""

    origin: str
    nodes: list[NodeInfo] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    classes: list[StorageClass] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    pods: list[PodInfo] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)
    services: list[ServiceInfo] = field(default_factory=list)
    pg_clusters: list[PgCluster] = field(default_factory=list)


def read_objects(items: Iterable[object], origin: str) -> Objects:
    """Sort raw objects into records; Lists are opened, unread kinds passed over."""
    out = Objects(origin)
    seen: set[tuple[str, str, str, str]] = set()
    for index, item in enumerate(_flatten(items, origin)):
        if not isinstance(item, Mapping):
            raise ClusterConfigError(located(origin, None, f"item {index} is not an object"))
        top = Fields(item, origin, f"item {index}")
        kind, group = top.text("kind"), _group(top.text("apiVersion"))
        if (group, kind) not in READ:
            continue
        meta = _meta(top, group, kind)
        key = (group, kind, meta.namespace, meta.name)
        if key in seen:
            continue  # the same object in two documents of one dump
        seen.add(key)
        _READERS[kind](out, Fields(item, origin, meta.ref), meta)
    _sort(out)
    return out


def _sort(out: Objects) -> None:
    """Objects in name order, whatever order a dump or the API gave them in."""
    out.nodes.sort(key=lambda n: n.name)
    out.volumes.sort(key=lambda v: v.name)
    out.classes.sort(key=lambda c: c.name)
    for records in (
        out.claims,
        out.pods,
        out.workloads,
        out.budgets,
        out.services,
        out.pg_clusters,
    ):
        records.sort(key=lambda r: (r.meta.namespace, r.meta.kind, r.meta.name))


def _flatten(items: Iterable[object], origin: str, depth: int = 0) -> Iterable[object]:
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("kind"), str):
            kind = str(item["kind"])
            if kind == "List" or (kind.endswith("List") and "items" in item):
                if depth > 4:
                    raise ClusterConfigError(located(origin, None, "Lists nested too deep"))
                inner = Fields(item, origin, kind).objects("items")
                yield from _flatten((_tagged(f.raw, item, kind) for f in inner), origin, depth + 1)
                continue
        yield item


def _tagged(raw: Mapping[str, object], lst: Mapping[str, object], kind: str) -> object:
    """An item of a typed list (``PodList``) as the API sends it carries no kind: add it."""
    if "kind" in raw or kind == "List":
        return raw
    return {**raw, "kind": kind.removesuffix("List"), "apiVersion": lst.get("apiVersion")}


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _meta(top: Fields, group: str, kind: str) -> Meta:
    metadata = top.obj("metadata")
    name, namespace = metadata.text("name"), metadata.text("namespace")
    place = f"{namespace}/{name}" if namespace else name
    metadata = Fields(metadata.raw, top.origin, f"{kind} {place or '(unnamed)'}", "metadata")
    if not name:
        raise metadata.fail("name", "is missing")
    owners = tuple((o.text("kind"), o.text("name")) for o in metadata.objects("ownerReferences"))
    return Meta(group, kind, namespace, name, metadata.text_map("labels"), owners)


def _requirements(items: list[Fields]) -> tuple[Requirement, ...]:
    return tuple(
        Requirement(e.text("key"), e.text("operator"), tuple(e.texts("values"))) for e in items
    )


def _selector(f: Fields) -> Selector:
    return Selector(f.text_map("matchLabels"), _requirements(f.objects("matchExpressions")))


def _node(out: Objects, f: Fields, meta: Meta) -> None:
    ready = any(
        c.text("type") == "Ready" and c.text("status") == "True"
        for c in f.at("status").objects("conditions")
    )
    out.nodes.append(NodeInfo(meta.name, ready, meta.labels))


_VOLUME_SOURCES = ("csi", "local", "hostPath", "nfs", "iscsi", "rbd", "cephfs", "fc")


def _volume(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    source = next((s for s in _VOLUME_SOURCES if spec.has(s)), "other")
    terms = spec.at("nodeAffinity.required").objects("nodeSelectorTerms")
    ref = spec.obj("claimRef")
    claim = (ref.text("namespace"), ref.text("name")) if ref.text("name") else None
    out.volumes.append(
        Volume(
            meta.name,
            spec.text("storageClassName"),
            source,
            spec.obj("csi").text("driver"),
            tuple(_requirements(t.objects("matchExpressions")) for t in terms),
            claim,
        )
    )


def _storage_class(out: Objects, f: Fields, meta: Meta) -> None:
    out.classes.append(StorageClass(meta.name, f.text("provisioner")))


def _claim(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    out.claims.append(
        Claim(
            meta,
            spec.text("storageClassName"),
            spec.text("volumeName"),
            f.obj("status").text("phase"),
            tuple(spec.texts("accessModes")),
            spec.text("volumeMode", "Filesystem"),
            spec.at("resources.requests").scalar("storage"),
        )
    )


def _containers(spec: Fields) -> list[Fields]:
    return [*spec.objects("initContainers"), *spec.objects("containers")]


def _env(spec: Fields) -> tuple[str, ...]:
    return tuple(
        e.text("value") for c in _containers(spec) for e in c.objects("env") if e.text("value")
    )


def _pod_claims(spec: Fields) -> tuple[str, ...]:
    return tuple(
        name
        for v in spec.objects("volumes")
        if (name := v.obj("persistentVolumeClaim").text("claimName"))
    )


def _pod(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    out.pods.append(
        PodInfo(
            meta,
            spec.text("nodeName"),
            f.obj("status").text("phase"),
            _pod_claims(spec),
            _env(spec),
        )
    )


def _workload(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    template = spec.obj("template")
    pod_spec = template.obj("spec")
    replicas = spec.number("replicas", 1)
    out.workloads.append(
        Workload(
            meta,
            _selector(spec.obj("selector")),
            template.obj("metadata").text_map("labels"),
            replicas,
            tuple(t.obj("metadata").text("name") for t in spec.objects("volumeClaimTemplates")),
            _pod_claims(pod_spec),
            tuple(c.text("image") for c in _containers(pod_spec)),
            _env(pod_spec),
        )
    )


def _budget(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    out.budgets.append(
        Budget(
            meta,
            _selector(spec.obj("selector")),
            spec.scalar("minAvailable"),
            spec.scalar("maxUnavailable"),
        )
    )


def _service(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    out.services.append(
        ServiceInfo(meta, spec.text("type", "ClusterIP"), spec.text_map("selector"))
    )


def _cnpg(out: Objects, f: Fields, meta: Meta) -> None:
    spec, status = f.obj("spec"), f.obj("status")
    out.pg_clusters.append(
        PgCluster(
            meta,
            spec.number("instances", 1),
            status.text("currentPrimary"),
            status.text("targetPrimary"),
            status.text("phase"),
            spec.text("imageName"),
        )
    )


def _zalando(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    out.pg_clusters.append(
        PgCluster(
            meta,
            spec.number("numberOfInstances", 1),
            "",
            "",
            f.obj("status").text("PostgresClusterStatus"),
            spec.obj("postgresql").text("version"),
        )
    )


def _crunchy(out: Objects, f: Fields, meta: Meta) -> None:
    spec = f.obj("spec")
    instances = sum(s.number("replicas", 1) for s in spec.objects("instances"))
    out.pg_clusters.append(PgCluster(meta, instances, "", "", "", spec.scalar("postgresVersion")))


_READERS = {
    "Node": _node,
    "PersistentVolume": _volume,
    "StorageClass": _storage_class,
    "PersistentVolumeClaim": _claim,
    "Pod": _pod,
    "StatefulSet": _workload,
    "Deployment": _workload,
    "PodDisruptionBudget": _budget,
    "Service": _service,
    "Cluster": _cnpg,
    "postgresql": _zalando,
    "PostgresCluster": _crunchy,
}
