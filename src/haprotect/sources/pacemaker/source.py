"""The Pacemaker source: a CIB and the cluster's state, joined into a topology.

``pacemaker://`` asks the running cluster (``cibadmin --query`` and
``crm_mon --output-as=xml``; both honour ``CIB_file`` for a saved CIB).
``pacemaker+file:///path/cib.xml`` reads a saved CIB, taking roles from
``crm_mon`` when it is installed and from the CIB's status section
otherwise (or always, with ``DiscoverOptions(use_cli=False)``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from lxml import etree

from haprotect.errors import ClusterConfigError, ComponentError, InputError, UsageError, located
from haprotect.model.topology import Cluster, Manager, Node, Resource, Topology
from haprotect.sources.base import DiscoverOptions, url_path, url_scheme
from haprotect.sources.pacemaker.agents import settings_of
from haprotect.sources.pacemaker.applications import infer_applications
from haprotect.sources.pacemaker.cib import CibConfig, read_config
from haprotect.sources.pacemaker.cli_tools import query_cib
from haprotect.sources.pacemaker.crm_mon import run_crm_mon, state_from_crm_mon
from haprotect.sources.pacemaker.datasets import infer_datasets
from haprotect.sources.pacemaker.graph import build_graph
from haprotect.sources.pacemaker.state import ClusterState
from haprotect.sources.pacemaker.status import state_from_status
from haprotect.sources.pacemaker.xml import parse_xml

log = logging.getLogger(__name__)

LIVE = "pacemaker"
FILE = "pacemaker+file"


class PacemakerSource:
    """The Pacemaker source (see the module docstring)."""

    name = "pacemaker"
    schemes = (LIVE, FILE)

    def applies_to(self, url: str) -> bool:
        scheme = url_scheme(url)
        if scheme in self.schemes:
            return True
        if scheme or not url.endswith(".xml"):
            return False
        try:
            with open(url, "rb") as handle:
                head = handle.read(4096)
        except OSError:
            return False
        return b"<cib" in head

    def discover(self, url: str, options: DiscoverOptions) -> Topology:
        if url_scheme(url) == LIVE:
            if not options.use_cli:
                raise UsageError(
                    "pacemaker:// asks the running cluster through its CLI; "
                    "read a saved CIB with pacemaker+file:///path/cib.xml instead"
                )
            data = query_cib(options.timeout_seconds)
            cib = parse_xml(data, "cibadmin --query")
            config = read_config(cib, "cibadmin --query")
            state = state_from_crm_mon(
                parse_xml(run_crm_mon(None, options.timeout_seconds), "crm_mon")
            )
            saved = os.environ.get("CIB_file")  # noqa: SIM112 (Pacemaker spells it so)
            name = Path(saved).stem if saved else "pacemaker"
            return Topology((build_cluster(config, state, fallback_name=name),))
        path = url_path(url)
        origin = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{origin}: cannot read: {exc.strerror or exc}") from None
        cib = parse_xml(data, origin)
        config = read_config(cib, origin)
        state = _saved_state(cib, path, options)
        return Topology((build_cluster(config, state, fallback_name=path.stem),))


def _saved_state(cib: etree._Element, path: Path, options: DiscoverOptions) -> ClusterState:
    """Roles from crm_mon when it is installed and accepts the CIB, else from its status.

    crm_mon refuses CIBs that fail its schema check although their content is
    readable (old or hand-edited files); their status section is read
    directly then, and a warning says so.
    """
    if not (options.use_cli and shutil.which("crm_mon")):
        return state_from_status(cib)
    try:
        output = run_crm_mon(path, options.timeout_seconds)
    except ComponentError as exc:
        log.warning("%s; roles are read from the CIB's status section instead", exc.message)
        return state_from_status(cib)
    return state_from_crm_mon(parse_xml(output, f"crm_mon on {path}"))


def build_cluster(config: CibConfig, state: ClusterState, fallback_name: str) -> Cluster:
    """Join the definition (config) and the placement (state) into the core model."""
    graph = build_graph(config)
    datasets = infer_datasets(config, state, graph)
    applications = infer_applications(config, graph, datasets)
    nodes = _nodes(config, state)
    resources = tuple(
        Resource(
            p.id,
            p.agent,
            p.parent,
            dict(state.placement.get(p.id, {})),
            settings_of(p.type, p.params),
        )
        for p in config.primitives.values()
    )
    return Cluster(
        name=config.cluster_name or fallback_name,
        manager=Manager.PACEMAKER,
        nodes=nodes,
        resources=resources,
        datasets=tuple(datasets),
        applications=tuple(applications),
        dependencies=tuple(graph.dependencies),
    )


def _nodes(config: CibConfig, state: ClusterState) -> tuple[Node, ...]:
    online = {n.name: n.online for n in state.nodes}
    names = [uname for _, uname in config.nodes]
    names += [n.name for n in state.nodes if n.name not in set(names)]
    return tuple(Node(name, online.get(name, False)) for name in dict.fromkeys(names))


__all__ = ["ClusterConfigError", "PacemakerSource", "build_cluster", "located"]
