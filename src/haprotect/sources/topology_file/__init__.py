"""The ``topology_file`` source: a cluster described by hand in YAML.

For clusters no source reads yet, or to try haprotect without a cluster.
``file:///path/topology.yaml`` or a bare path ending in ``.yaml``/``.yml``
names the file; docs/topology-file.md describes the format.
"""

from __future__ import annotations

from haprotect.errors import ClusterConfigError
from haprotect.model.topology import Topology
from haprotect.sources.base import DiscoverOptions, url_path, url_scheme
from haprotect.sources.topology_file.convert import to_topology
from haprotect.sources.topology_file.spec import TopologyFileSpec
from haprotect.yamlsource import read_yaml

SUFFIXES = (".yaml", ".yml")


class TopologyFileSource:
    """The ``topology_file`` source: reads a topology YAML file (see the module docstring)."""

    name = "topology_file"
    schemes = ("file",)

    def applies_to(self, url: str) -> bool:
        if url_scheme(url) not in ("", *self.schemes):
            return False
        return url.lower().endswith(SUFFIXES)

    def discover(self, url: str, options: DiscoverOptions) -> Topology:
        """Read the file ``url`` names; ``options`` do not apply to a file."""
        path = url_path(url)
        doc = read_yaml(path, error=ClusterConfigError)
        return to_topology(doc, doc.validate(TopologyFileSpec))


__all__ = ["TopologyFileSource"]
