"""Which node an item is read from: the rule of ``read_from``, applied now.

Three steps, each pure but for the probe it is given:

1. :func:`initial`, from the topology alone: the primary, and for a standby
   read the online standbys in order (the candidates).
2. :func:`check`, with a probe (the mover's health check of one node): the
   first candidate that is healthy and within ``max_lag_seconds`` is chosen;
   with none, the fallback decides: read the primary, wait for a standby, or
   fail. A node of any other role is checked too, and not read when the
   check fails (there is nothing to fall back to).
3. :func:`settle`, at run time: :func:`check` again, and when the choice is
   to wait, poll the candidates until one is good or ``wait_seconds`` pass.

Every step says why in ``reasons``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from haprotect.model.plan import SourceChoice, SourceHealth
from haprotect.model.policy import Fallback, ReadFrom, ReadRole
from haprotect.model.topology import Cluster, DataSet, Role

Probe = Callable[[str], SourceHealth]  #: checks one node as a source for one item


def initial(read: ReadFrom, dataset: DataSet, cluster: Cluster) -> SourceChoice:
    """The choice the topology allows, before any node is checked."""
    online = {n.name for n in cluster.nodes if n.online}
    primary = dataset.primary
    base = SourceChoice(
        role=read.role,
        node=None,
        primary=primary,
        max_lag_seconds=read.max_lag_seconds,
        fallback=read.fallback,
    )
    if read.role is ReadRole.STANDBY:
        standbys = [n for n in dataset.standbys if n != primary]
        candidates = tuple(n for n in standbys if n in online)
        offline = [n for n in standbys if n not in online]
        basis = [f"role standby: {_primary_text(primary)}"]
        if candidates:
            basis.append(f"standbys online: {', '.join(candidates)}")
        else:
            basis.append("no standby online" if standbys else "the cluster lists no standby")
        if offline:
            basis.append(f"offline: {', '.join(offline)}")
        node = candidates[0] if candidates else None
        choice = replace(base, node=node, candidates=candidates, basis=tuple(basis))
        if node is None:
            return _fall_back(choice, "no standby to read", [])
        return replace(choice, reasons=(*choice.basis, f"read {node} (not checked yet)"))
    node, because = _fixed_node(read, dataset, cluster)
    if node is not None and node not in online:
        because += f", but {node} is offline"
        node = None
    fixed = (node,) if node is not None else ()
    return replace(base, node=node, candidates=fixed, basis=(because,), reasons=(because,))


def check(choice: SourceChoice, probe: Probe) -> SourceChoice:
    """Check the candidates (or the fixed node) with ``probe``; apply the fallback."""
    if choice.role is not ReadRole.STANDBY:
        if not choice.candidates:
            return choice
        node = choice.candidates[0]
        health = probe(node)
        if health.healthy:
            because = f"{node}: {health.detail}"
            return replace(choice, node=node, reasons=(*choice.basis, because), checks=(health,))
        because = f"{node} cannot be read: {health.detail}"
        return replace(choice, node=None, reasons=(*choice.basis, because), checks=(health,))
    checks: list[SourceHealth] = []
    rejected: list[str] = []
    for node in choice.candidates:
        health = probe(node)
        checks.append(health)
        problem = _problem(health, choice.max_lag_seconds)
        if problem is None:
            because = f"read standby {node}: {health.detail}"
            return replace(
                choice,
                node=node,
                fallback_used=False,
                wait=False,
                reasons=(*choice.basis, because),
                checks=tuple(checks),
            )
        rejected.append(f"{node} {problem}")
    why = "no standby within the limit (" + "; ".join(rejected) + ")" if rejected else ""
    return _fall_back(choice, why or "no standby to read", checks)


def settle(
    choice: SourceChoice,
    probe: Probe,
    *,
    wait_seconds: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SourceChoice:
    """The choice just before the copy: checked again, waiting for a standby if told to."""
    checked = check(choice, probe)
    if not checked.wait:
        return checked
    deadline = clock() + wait_seconds
    while clock() < deadline:
        sleep(min(interval, max(0.0, deadline - clock())))
        again = check(choice, probe)
        if not again.wait:
            waited = f"waited for a standby ({wait_seconds:.0f}s at most)"
            return replace(again, reasons=(*again.reasons, waited))
        checked = again
    gave_up = f"waited {wait_seconds:.0f}s for a standby within the limit: none came"
    return replace(checked, node=None, wait=False, reasons=(*checked.reasons, gave_up))


def _problem(health: SourceHealth, max_lag: int | None) -> str | None:
    if not health.healthy:
        return f"is not usable: {health.detail}"
    if max_lag is not None and health.lag_seconds is not None and health.lag_seconds > max_lag:
        return f"is {health.lag_seconds:.1f}s behind (limit {max_lag}s)"
    return None


def _fall_back(choice: SourceChoice, why: str, checks: list[SourceHealth]) -> SourceChoice:
    fallback = choice.fallback or Fallback.FAIL
    prefix = (*choice.basis, why)
    if fallback is Fallback.PRIMARY:
        if choice.primary is None:
            reasons = (*prefix, "fallback primary: but no node is primary now")
            return replace(choice, node=None, reasons=reasons, checks=tuple(checks))
        reasons = (*prefix, f"fallback primary: read the primary {choice.primary}")
        return replace(
            choice,
            node=choice.primary,
            fallback_used=True,
            wait=False,
            reasons=reasons,
            checks=tuple(checks),
        )
    if fallback is Fallback.WAIT and choice.candidates:
        reasons = (*prefix, "fallback wait: wait for a standby to be within the limit")
        return replace(
            choice,
            node=choice.candidates[0],
            fallback_used=True,
            wait=True,
            reasons=reasons,
            checks=tuple(checks),
        )
    if fallback is Fallback.WAIT:
        reasons = (*prefix, "fallback wait: but no standby is online to wait for")
    else:
        reasons = (*prefix, "fallback fail: the item is not backed up")
    return replace(
        choice, node=None, fallback_used=True, wait=False, reasons=reasons, checks=tuple(checks)
    )


def _primary_text(primary: str | None) -> str:
    return f"{primary} is primary" if primary else "no node is primary now"


def _fixed_node(read: ReadFrom, dataset: DataSet, cluster: Cluster) -> tuple[str | None, str]:
    """The one node a primary, active or local read uses, and why."""
    role = read.role
    if role is ReadRole.PRIMARY:
        if dataset.primary:
            return dataset.primary, f"role primary: {dataset.primary} is primary"
        return None, "role primary: no node is primary now"
    running = _running_on(dataset, cluster)
    if role is ReadRole.ACTIVE:
        node = dataset.primary or (running[0] if running else None)
        if node:
            return node, f"role active: the storage is on {node} now"
        return None, "role active: the resource runs nowhere now"
    node = dataset.primary or (running[0] if running else None)
    node = node or (read.nodes[0] if read.nodes else None)
    if node:
        return node, f"role local: the data is on {node}"
    return None, "role local: no node holds the data"


def _running_on(dataset: DataSet, cluster: Cluster) -> list[str]:
    for resource in cluster.resources:
        if resource.id == dataset.resource:
            return [n for n, r in resource.placement.items() if r is not Role.UNPROMOTED]
    return []
