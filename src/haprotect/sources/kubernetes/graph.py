"""Who needs whom: Services, the workloads behind them, and the workloads that name them.

Two kinds of evidence, and no guessing beyond them:

- ``selects``: a Service needs the workload (or operator cluster) whose pods
  its selector picks.
- ``names``: a workload needs a Service that one of its containers' literal
  environment values names as a host (``pg-rw``, ``pg-rw.shop``,
  ``pg-rw.shop.svc.cluster.local``, or inside a URL). The values are only
  searched for names; they are never kept (they may hold passwords).
"""

from __future__ import annotations

import re

from haprotect.model.topology import Dependency
from haprotect.sources.kubernetes.units import Unit

_SEPARATOR = re.compile(r"[^a-z0-9.-]+")


def build_dependencies(units: list[Unit]) -> list[Dependency]:
    by_id = {u.id: u for u in units}
    services = [u for u in units if u.service is not None]
    out: list[Dependency] = []
    behind: dict[str, set[str]] = {}
    for service in services:
        picked = {(p.meta.namespace, p.meta.name) for p in service.pods}
        targets: list[str] = []
        for unit in units:
            if unit.service is not None or not picked.intersection(
                (p.meta.namespace, p.meta.name) for p in unit.pods
            ):
                continue
            target = _top(unit, by_id).id
            if target not in targets:
                targets.append(target)
        out += [Dependency(service.id, target, "selects") for target in targets]
        behind[service.id] = set(targets)
    for unit in units:
        if unit.workload is None or not unit.workload.env:
            continue
        hosts = {
            token.strip(".-")
            for value in unit.workload.env
            for token in _SEPARATOR.split(value.lower())
        }
        own = _top(unit, by_id).id
        for service in services:
            if own in behind.get(service.id, ()):
                continue  # its own Service (an operator's pods name their cluster's)
            if _names(hosts, service, unit.meta.namespace):
                out.append(Dependency(unit.id, service.id, "names"))
    return out


def _top(unit: Unit, by_id: dict[str, Unit]) -> Unit:
    seen = {unit.id}
    while unit.parent is not None and unit.parent in by_id and unit.parent not in seen:
        unit = by_id[unit.parent]
        seen.add(unit.id)
    return unit


def _names(hosts: set[str], service: Unit, namespace: str) -> bool:
    name, ns = service.meta.name, service.meta.namespace
    qualified = {f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"}
    if ns == namespace and name in hosts:
        return True
    return bool(qualified & hosts)
