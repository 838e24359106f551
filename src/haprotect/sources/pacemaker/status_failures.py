"""How Pacemaker treats a failed action: its ``on-fail`` policy and expiry.

Mirrors ``unpack_operation``/``unpack_operation_on_fail`` (the policy of a
failed action, with Pacemaker's defaults) and ``check_operation_expiry`` with
``pe_get_failcount`` (a failure older than ``failure-timeout`` no longer
counts) from Pacemaker 2.1's ``lib/pengine``.
"""

from __future__ import annotations

import re

from lxml import etree

from haprotect.sources.pacemaker.state import strip_instance
from haprotect.sources.pacemaker.status_config import (
    ClusterNode,
    Config,
    Primitive,
    crm_int,
    interval_ms,
    is_true,
    nvsets,
)

# on-fail policies, numbered by severity as Pacemaker's cmp_on_fail() orders them
IGNORE, DEMOTE, RECOVER, RESET_REMOTE, RESTART_CONTAINER = 0, 1, 2, 3, 4
MIGRATE, BLOCK, STOP, STANDBY, FENCE = 5, 6, 7, 8, 9
_ON_FAIL = {
    "block": BLOCK,
    "standby": STANDBY,
    "ignore": IGNORE,
    "nothing": IGNORE,
    "migrate": MIGRATE,
    "stop": STOP,
    "restart": RECOVER,
    "demote": DEMOTE,
}
_INFINITY = 1_000_000
#: probe results that never expire
_PROBE_KEEPS = (0, 7, 8, 190, 191)
_OP_SUFFIX = re.compile(r".+_[0-9]+")


def on_fail(config: Config, prim: Primitive, task: str, interval: int, managed: bool) -> int:
    """The policy for a failed ``task`` of ``prim``: the op's, or Pacemaker's default."""
    op = _find_op(prim, task, interval)
    value = config.op_defaults.get("on-fail")
    if op is not None:
        value = op.get("on-fail") or nvsets(op, "meta_attributes").get("on-fail", value)
    low = value.lower() if value else None
    if task == "stop" and low in ("standby", "demote", "stop"):
        low = None
    elif task == "demote" and low is None:
        low = _promoted_monitor_on_fail(prim)
    elif low == "demote" and not _demote_allowed(op):
        low = None
    result = _ON_FAIL.get(low or "")
    if low == "fence":
        result = FENCE if config.stonith else STOP
    elif low == "restart-container" and prim.container:
        result = RESTART_CONTAINER
    probe = task == "monitor" and interval == 0
    if result is None and prim.container:
        return RESTART_CONTAINER
    remote_connection = prim.remote and not prim.container
    if (result is None or not managed) and remote_connection and not probe and task != "start":
        return RESET_REMOTE if managed else STOP
    if result is None:
        return (FENCE if config.stonith else BLOCK) if task == "stop" else RECOVER
    return result


def expired(
    config: Config,
    prim: Primitive,
    rsc_id: str,
    op: etree._Element,
    node: ClusterNode,
    *,
    now: float,
) -> bool:
    """Whether ``op`` is a failure older than the resource's ``failure-timeout``."""
    timeout = prim.failure_timeout
    last_run = crm_int(op.get("last-rc-change"), -1)
    if timeout <= 0 or last_run < 0:
        return False
    task, interval = op.get("operation"), crm_int(op.get("interval"), 0)
    old = now >= last_run + timeout
    if prim.reconnect and config.stonith and interval and task == "monitor":
        remote = config.node_named(prim.id)
        old = old and (remote is None or remote.was_fenced)
    if task == "monitor" and interval == 0:
        old = old and crm_int(op.get("rc-code"), 0) not in _PROBE_KEEPS
    if not old:
        return False
    count, last = _failcount(config, node, rsc_id, prim.clone == "unique")
    return count <= 0 or (last > 0 and now > last + timeout)


def _failcount(config: Config, node: ClusterNode, rsc_id: str, unique: bool) -> tuple[int, int]:
    """``pe_get_failcount``: the node's fail count for a resource, and its last failure.

    Pacemaker matches ``fail-count-NAME[:N][#OP_INTERVAL]`` attributes with a
    regular expression per resource; an index by name keeps this linear.
    """
    if node.failures is None:
        node.failures = _index_failures(node.attrs)
    name = rsc_id if unique else strip_instance(rsc_id)
    count = last = 0
    for is_count, instance, per_op, value in node.failures.get(strip_instance(name), ()):
        if (instance if unique else strip_instance(instance)) != name:
            continue
        if per_op == config.legacy_failcounts:
            continue  # per-operation fail counts replaced per-resource ones in 3.0.13
        if is_count:
            count = max(-_INFINITY, min(_INFINITY, count + _score(value)))
        else:
            last = max(last, crm_int(value, 0))
    return count, last


def _index_failures(attrs: dict[str, str]) -> dict[str, list[tuple[bool, str, bool, str]]]:
    """Fail count and last failure attributes by resource name (instance stripped)."""
    index: dict[str, list[tuple[bool, str, bool, str]]] = {}
    for key, value in attrs.items():
        is_count = key.startswith("fail-count-")
        if not is_count and not key.startswith("last-failure-"):
            continue
        instance, sep, op_part = (
            key.removeprefix("fail-count-").removeprefix("last-failure-").partition("#")
        )
        per_op = bool(sep) and _OP_SUFFIX.fullmatch(op_part) is not None
        if sep and not per_op:
            continue
        index.setdefault(strip_instance(instance), []).append((is_count, instance, per_op, value))
    return index


def _find_op(prim: Primitive, task: str, interval: int) -> etree._Element | None:
    """The configured ``<op>`` for an action; migrations fall back to ``migrate``."""
    for name, want in ((task, interval), ("migrate", 0)):
        for op in prim.ops:
            if (op.get("name") or "").lower() == name and interval_ms(op.get("interval")) == want:
                return op
        if task not in ("migrate_to", "migrate_from"):
            break
    return None


def _promoted_monitor(op: etree._Element | None) -> bool:
    return (
        op is not None
        and (op.get("name") or "").lower() == "monitor"
        and (op.get("role") or "").lower() in ("promoted", "master")
        and interval_ms(op.get("interval")) > 0
    )


def _promoted_monitor_on_fail(prim: Primitive) -> str | None:
    """A demote fails as the promoted-role monitor does, unless that says demote."""
    for op in prim.ops:
        policy = (op.get("on-fail") or "").lower()
        enabled = op.get("enabled")
        usable = enabled is None or is_true(enabled)
        if policy and policy != "demote" and usable and _promoted_monitor(op):
            return policy
    return None


def _demote_allowed(op: etree._Element | None) -> bool:
    name = (op.get("name") or "").lower() if op is not None else ""
    return name == "promote" or _promoted_monitor(op)


def _score(value: str) -> int:
    low = value.strip().lower()
    if low in ("infinity", "+infinity"):
        return _INFINITY
    if low == "-infinity":
        return -_INFINITY
    return max(-_INFINITY, min(_INFINITY, crm_int(value, 0)))
