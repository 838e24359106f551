"""Cluster sources: one module per cluster manager, all behind one registry."""

from __future__ import annotations

from haprotect.errors import UsageError
from haprotect.model.topology import Topology
from haprotect.registry import Builtin, Registry
from haprotect.sources.base import DiscoverOptions, Source

#: The sources, by name; ``select(url)`` finds the one that reads a URL.
sources: Registry[Source, str] = Registry(
    "source",
    "haprotect.sources",
    (
        Builtin("pacemaker", "haprotect.sources.pacemaker.source:PacemakerSource"),
        Builtin("topology_file", "haprotect.sources.topology_file:TopologyFileSource"),
        Builtin("kubernetes", "haprotect.sources.kubernetes.source:KubernetesSource", extra="k8s"),
        Builtin("vcs", "haprotect.sources.vcs.source:VcsSource"),
    ),
)


def source_for(url: str) -> Source:
    """The source that reads ``url`` (UsageError if none does)."""
    source = sources.select(url)
    if source is not None:
        return source
    raise UsageError(
        f"no source reads {url!r}",
        hint="use pacemaker://, pacemaker+file:///path/cib.xml, vcs://, "
        "vcs+file:///path/main.cf, kubernetes://, kubernetes+file:///path/dump.json "
        "or file:///path/topology.yaml",
    )


def discover(url: str, options: DiscoverOptions | None = None) -> Topology:
    """Query the cluster that ``url`` names and return its topology."""
    return source_for(url).discover(url, options or DiscoverOptions())


__all__ = ["DiscoverOptions", "Source", "discover", "source_for", "sources"]
