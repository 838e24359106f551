"""Reading ``lrm_rsc_op`` entries the way Pacemaker 2.1 does.

Their order (``pe__is_newer_op``: call ids on one node, then change times,
then transition numbers for pending actions), the result the cluster
expected (from the ``transition-key``), probes whose failure only means
"not running", and look-ups in other nodes' histories that live migrations
need (``find_lrm_op``, ``non_monitor_after``, ``newer_state_after_migrate``).
"""

from __future__ import annotations

import re

from lxml import etree

from haprotect.sources.pacemaker.status_config import crm_int

DONE, ERROR, NOT_INSTALLED = 0, 4, 7
_MAGIC = re.compile(r"\s*([+-]?\d+):([+-]?\d+);(\S+)")
_KEY = re.compile(r"\s*([+-]?\d+):([+-]?\d+):([+-]?\d+):(\S{1,36})")
_STATE_CHANGING = ("start", "stop", "migrate_to", "migrate_from")


class History:
    """All nodes' histories, indexed on first use (live migrations need them)."""

    def __init__(self, status: etree._Element | None) -> None:
        self._status = status
        self._index: dict[tuple[str, str], list[etree._Element]] | None = None

    def ops(self, rsc_id: str, node_name: str) -> list[etree._Element]:
        if self._index is None:
            self._index = {}
            states = () if self._status is None else self._status.iterfind("node_state")
            for state in states:
                uname = state.get("uname", "")
                for entry in state.iterfind("lrm/lrm_resources/lrm_resource"):
                    found = self._index.setdefault((uname, entry.get("id", "")), [])
                    found.extend(entry.iterfind("lrm_rsc_op"))
        return self._index.get((node_name, rsc_id), [])

    def find(
        self, rsc_id: str, task: str, node_name: str, peer: str | None, want_rc: int
    ) -> etree._Element | None:
        """``find_lrm_op``: the first such operation, if it ended with ``want_rc``."""
        attr = {"migrate_to": "migrate_target", "migrate_from": "migrate_source"}.get(task)
        for op in self.ops(rsc_id, node_name):
            if op.get("operation") != task:
                continue
            if peer is not None and attr is not None and op.get(attr) != peer:
                continue
            rc, status = crm_int(op.get("rc-code"), 1), crm_int(op.get("op-status"), ERROR)
            return None if want_rc >= 0 and (rc != want_rc or status != DONE) else op
        return None

    def changed_after(self, rsc_id: str, node_name: str, ref: etree._Element, same: bool) -> bool:
        """``non_monitor_after``: a start, stop or migration after ``ref``."""
        return any(
            op is not ref and op.get("operation") in _STATE_CHANGING and newer(op, ref, same) > 0
            for op in self.ops(rsc_id, node_name)
        )

    def newer_after_migration(
        self, rsc_id: str, node: str, to_op: etree._Element | None, from_op: etree._Element | None
    ) -> bool:
        """``newer_state_after_migrate``: the node's state moved on since the migration."""
        ref = from_op if from_op is not None else to_op
        assert ref is not None
        same = False
        if node.lower() == (ref.get("migrate_target") or "").lower():
            same, ref = from_op is not None, from_op if from_op is not None else to_op
        elif node.lower() == (ref.get("migrate_source") or "").lower():
            same, ref = to_op is not None, to_op if to_op is not None else from_op
        assert ref is not None
        stopped = self.find(rsc_id, "monitor", node, None, 7)
        return self.changed_after(rsc_id, node, ref, same) or (
            stopped is not None and newer(stopped, ref, same) > 0
        )


def masked_probe(task: str, interval: int, rc: int, status: int) -> bool:
    """A probe that found the agent missing or misconfigured means "not running"."""
    return task == "monitor" and interval == 0 and (rc in (2, 5) or status == NOT_INSTALLED)


def target_rc(op: etree._Element) -> int:
    """The result the cluster expected, from the ``transition-key``; -1 if unknown."""
    parts = (op.get("transition-key") or "").split(":", 3)
    if len(parts) < 4 or not parts[3].strip():
        return -1
    try:
        int(parts[0]), int(parts[1])
        return int(parts[2])
    except ValueError:
        return -1


def _magic(op: etree._Element) -> tuple[str, int] | None:
    match = _MAGIC.match(op.get("transition-magic") or "")
    key = _KEY.match(match.group(3)) if match else None
    return (key.group(4), int(key.group(2))) if key else None


def newer(a: etree._Element, b: etree._Element, same_default: bool = True) -> int:
    """``pe__is_newer_op``: above zero when ``a`` happened after ``b``."""
    a_node, b_node = a.get("on_node"), b.get("on_node")
    same = same_default if a_node is None or b_node is None else a_node.lower() == b_node.lower()
    if same and a.get("id") == b.get("id"):
        return 0
    a_call, b_call = crm_int(a.get("call-id"), -1), crm_int(b.get("call-id"), -1)
    if a_call == -1 and b_call == -1:
        return 0
    if same and 0 <= a_call < b_call:
        return -1
    if same and 0 <= b_call < a_call:
        return 1
    if a_call >= 0 and b_call >= 0:
        a_last = crm_int(a.get("last-rc-change"), -1)
        b_last = crm_int(b.get("last-rc-change"), -1)
        return -1 if 0 <= a_last < b_last else 1 if 0 <= b_last < a_last else 0
    a_magic, b_magic = _magic(a), _magic(b)
    if a_magic is None or b_magic is None:
        return 0
    (a_uuid, a_id), (b_uuid, b_id) = a_magic, b_magic
    if a_uuid != b_uuid or a_id == b_id:
        return -1 if b_call == -1 else 1
    if 0 <= a_id < b_id or b_id == -1:
        return -1
    return 1 if 0 <= b_id < a_id or a_id == -1 else 0


class CallOrder:
    """Sort key wrapping :func:`newer`, which is not a total order."""

    __slots__ = ("op",)

    def __init__(self, op: etree._Element) -> None:
        self.op = op

    def __lt__(self, other: CallOrder) -> bool:
        return newer(self.op, other.op) < 0
