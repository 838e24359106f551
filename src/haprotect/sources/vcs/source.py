"""The VCS source: a main.cf and the cluster's state, joined into a topology.

``vcs+file:///etc/VRTSvcs/conf/config/main.cf`` reads a saved main.cf and
the files it includes (relative to it; a missing one, such as a types.cf
not copied along, only leaves its types unknown). The state is read from
outputs saved beside it, when they are there: ``main.cf.hastatus``
(``hastatus -sum``), ``main.cf.hagrp`` (``hagrp -state``), ``main.cf.hares``
(``hares -state``) and ``main.cf.status`` (any of them, one after another).

``vcs://`` asks the running cluster: the main.cf that VCS keeps
(``$VCS_CONF/conf/config/main.cf``, ``/etc/VRTSvcs`` by default) and the
state from ``hastatus -sum``, ``hagrp -state`` and ``hares -state``.
"""

from __future__ import annotations

import os
from pathlib import Path

from haprotect.errors import InputError, UsageError
from haprotect.model.topology import Cluster, Manager, Resource, Topology
from haprotect.sources.base import DiscoverOptions, url_path, url_scheme
from haprotect.sources.vcs.applications import build_graph, infer_applications
from haprotect.sources.vcs.cli_tools import CommandRunner, live_state, run_command
from haprotect.sources.vcs.config import MainCf
from haprotect.sources.vcs.datasets import infer_datasets
from haprotect.sources.vcs.parser import parse_main_cf
from haprotect.sources.vcs.placement import Placement
from haprotect.sources.vcs.status import VcsState, read_state
from haprotect.sources.vcs.storage import index_storage

LIVE = "vcs"
FILE = "vcs+file"
#: suffixes of the saved state files read beside a main.cf (``main.cf.hastatus``...)
STATE_SUFFIXES = (".hastatus", ".hagrp", ".hares", ".status")
DEFAULT_VCS_CONF = "/etc/VRTSvcs"


class VcsSource:
    """The Veritas Cluster Server source (see the module docstring).

    ``runner`` runs VCS's commands for ``vcs://`` and ``vcs_conf`` is where
    VCS keeps its configuration; both default to the installed cluster's.
    """

    name = "vcs"
    schemes = (LIVE, FILE)

    def __init__(self, runner: CommandRunner | None = None, vcs_conf: Path | None = None) -> None:
        self.runner: CommandRunner = runner or run_command
        self.vcs_conf = vcs_conf

    def applies_to(self, url: str) -> bool:
        scheme = url_scheme(url)
        if scheme in self.schemes:
            return True
        return not scheme and url.endswith(".cf")

    def discover(self, url: str, options: DiscoverOptions) -> Topology:
        if url_scheme(url) == LIVE:
            if not options.use_cli:
                raise UsageError(
                    "vcs:// asks the running cluster through its commands; "
                    "read a saved main.cf with vcs+file:///path/main.cf instead"
                )
            conf = self.vcs_conf or Path(os.environ.get("VCS_CONF") or DEFAULT_VCS_CONF)
            path = conf / "conf" / "config" / "main.cf"
            config = read_main_cf(path)
            state = live_state(self.runner, options.timeout_seconds)
            return Topology((build_cluster(config, state, fallback_name=LIVE),))
        path = url_path(url)
        config = read_main_cf(path)
        return Topology((build_cluster(config, saved_state(path), fallback_name=path.stem),))


def read_main_cf(path: Path) -> MainCf:
    """Parse ``path`` and its includes (one-line errors naming file and line)."""
    return parse_main_cf(_read(path), str(path), _load_include)


def saved_state(path: Path) -> VcsState:
    """The state in the outputs saved beside ``path`` (none: nothing is online)."""
    state = VcsState()
    for suffix in STATE_SUFFIXES:
        beside = path.with_name(path.name + suffix)
        if beside.is_file():
            state.merge(read_state(_read(beside)))
    return state


def build_cluster(config: MainCf, state: VcsState, fallback_name: str) -> Cluster:
    """Join the definition (main.cf) and the placement (state) into the core model."""
    placement = Placement(config, state)
    index = index_storage(config)
    datasets = infer_datasets(config, placement, index)
    graph = build_graph(config, index)
    resources = tuple(
        Resource(r.name, r.type, r.group, placement.roles(r.name))
        for r in config.resources.values()
    )
    return Cluster(
        name=config.cluster_name or fallback_name,
        manager=Manager.VCS,
        nodes=placement.nodes(),
        resources=resources,
        datasets=tuple(datasets),
        applications=tuple(infer_applications(config, graph, datasets)),
        dependencies=tuple(graph.dependencies),
    )


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _load_include(name: str, including: str) -> tuple[str, str] | None:
    path = Path(including).parent / name
    if not path.is_file():
        return None
    return str(path), _read(path)
