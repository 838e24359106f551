"""Cluster sources: one module per cluster manager, all behind one registry."""

from __future__ import annotations

from functools import cache

from haprotect.errors import UsageError
from haprotect.model.topology import Topology
from haprotect.registry import Registry
from haprotect.sources.base import DiscoverOptions, Source

sources: Registry[Source] = Registry("source", "haprotect.sources")


@cache
def _register_builtins() -> None:
    from haprotect.sources.pacemaker.source import PacemakerSource
    from haprotect.sources.topology_file import TopologyFileSource

    sources.register("pacemaker", PacemakerSource())
    sources.register("topology_file", TopologyFileSource())


def source_for(url: str) -> Source:
    _register_builtins()
    for source in sources:
        if source.applies_to(url):
            return source
    raise UsageError(
        f"no source reads {url!r}",
        hint="use pacemaker://, pacemaker+file:///path/cib.xml or file:///path/topology.yaml",
    )


def discover(url: str, options: DiscoverOptions | None = None) -> Topology:
    """Query the cluster that ``url`` names and return its topology."""
    return source_for(url).discover(url, options or DiscoverOptions())


__all__ = ["DiscoverOptions", "Source", "discover", "source_for", "sources"]
