"""The Kubernetes source: objects from a dump or the API, joined into a topology.

``kubernetes+file:///path/dump.json`` reads what ``kubectl get -o json``
printed (a List, one object, or several documents one after another);
``kubernetes://`` asks the API server of the current context of the default
kubeconfig, ``kubernetes://CONTEXT`` that of another context, and
``kubernetes:///path/kubeconfig[?context=NAME]`` those of another file,
through the official client (:mod:`haprotect.sources.kubernetes.api`). Both
read the same kinds into the same records, so a cluster gives the same
topology either way. docs/kubernetes.md says how objects become the model.
"""

from __future__ import annotations

from haprotect.model.topology import Cluster, Manager, Node, Resource, Topology
from haprotect.sources.base import DiscoverOptions, url_path, url_scheme
from haprotect.sources.kubernetes.applications import infer_applications
from haprotect.sources.kubernetes.claims import Storage
from haprotect.sources.kubernetes.datasets import infer_datasets
from haprotect.sources.kubernetes.dump import read_dump
from haprotect.sources.kubernetes.graph import build_dependencies
from haprotect.sources.kubernetes.objects import Objects, read_objects
from haprotect.sources.kubernetes.units import build_units

LIVE = "kubernetes"
FILE = "kubernetes+file"


class KubernetesSource:
    """The Kubernetes source (see the module docstring)."""

    name = "kubernetes"
    schemes = (LIVE, FILE)

    def applies_to(self, url: str) -> bool:
        return url_scheme(url) in self.schemes

    def discover(self, url: str, options: DiscoverOptions) -> Topology:
        if url_scheme(url) == FILE:
            path = url_path(url)
            objects = read_objects(read_dump(path), str(path))
            return Topology((build_cluster(objects, path.stem),))
        from haprotect.sources.kubernetes.api import list_objects, parse_target

        items, context, server = list_objects(parse_target(url), options.timeout_seconds)
        objects = read_objects(items, f"kubernetes API {server}")
        return Topology((build_cluster(objects, context),))


def build_cluster(objects: Objects, name: str) -> Cluster:
    """The core model of one Kubernetes cluster's objects."""
    nodes = _nodes(objects)
    storage = Storage.of(objects, ((n.name, n.online) for n in nodes))
    units = build_units(objects)
    datasets = infer_datasets(units, storage, objects.budgets)
    dependencies = build_dependencies(units)
    applications = infer_applications(units, dependencies, datasets)
    resources = tuple(Resource(u.id, u.agent, u.parent, u.placement()) for u in units)
    return Cluster(
        name=name,
        manager=Manager.KUBERNETES,
        nodes=nodes,
        resources=resources,
        datasets=tuple(datasets),
        applications=tuple(applications),
        dependencies=tuple(dependencies),
    )


def _nodes(objects: Objects) -> tuple[Node, ...]:
    """Node objects (online when Ready), then nodes known only from running pods (online)."""
    nodes = {n.name: n.ready for n in objects.nodes}
    known = set(nodes)
    for pod in objects.pods:
        if pod.node and pod.node not in known:
            nodes[pod.node] = nodes.get(pod.node, False) or pod.phase == "Running"
    return tuple(Node(name, online) for name, online in nodes.items())


__all__ = ["KubernetesSource", "build_cluster"]
