"""Replaying one resource's operation history on one node.

Mirrors Pacemaker 2.1's ``unpack_lrm_resource``: the ``lrm_rsc_op`` entries
are sorted by call id (``pe__is_newer_op``), each is judged against the
result the cluster expected (``remap_operation``), then applied: a success
moves the role (``update_resource_state``), a failure leaves the resource
active and failed (``unpack_rsc_op_failure``), a pending action shows as in
flight. Live migrations look at the peer node's history too. Finally
``process_rsc_state`` records the node in the instance's ``running`` list.
"""

from __future__ import annotations

from typing import Protocol

from lxml import etree

from haprotect.sources.pacemaker.status_config import ClusterNode, Config, Primitive, crm_int
from haprotect.sources.pacemaker.status_failures import (
    BLOCK,
    DEMOTE,
    FENCE,
    IGNORE,
    MIGRATE,
    RECOVER,
    RESET_REMOTE,
    RESTART_CONTAINER,
    expired,
    on_fail,
)
from haprotect.sources.pacemaker.status_ops import CallOrder, History, masked_probe, target_rc

UNKNOWN, STOPPED, STARTED, UNPROMOTED, PROMOTED = range(5)
_NO_OP = etree.Element("lrm_rsc_op")
# executor statuses (op-status) the replay distinguishes
PENDING, DONE, CANCELLED, NOT_SUPPORTED, ERROR, HARD, FATAL = -1, 0, 1, 3, 4, 5, 6
NOT_INSTALLED, NOT_CONNECTED, LAST_STATUS = 7, 8, 11


class Instance:
    """One resource instance: a primitive, a unique clone instance, or an
    anonymous clone instance on one node (those never run on two nodes)."""

    __slots__ = ("failed", "managed", "partial_source", "pending", "prim", "role", "running")

    def __init__(self, prim: Primitive) -> None:
        self.prim = prim
        self.role = UNKNOWN
        self.running: list[ClusterNode] = []
        self.failed = False
        self.managed = prim.managed
        self.pending: str | None = None
        self.partial_source: ClusterNode | None = None

    def set_active(self) -> None:
        self.role = UNPROMOTED if self.prim.promotable else STARTED

    def add_running(self, node: ClusterNode) -> None:
        """``native_add_running``."""
        if node in self.running:
            return
        self.running.append(node)
        if node.maintenance or (len(self.running) > 1 and self.prim.multiple_block):
            self.managed = False


class Unpacking(Protocol):
    """What a replay needs from the unpacking of the whole status section."""

    config: Config
    now: float
    instances: dict[str, Instance]
    history: History

    def fence(self, node: ClusterNode) -> None: ...

    def can_fence(self, node: ClusterNode) -> bool: ...


class Replay:
    """Replays the history of one resource on one node (``unpack_lrm_resource``)."""

    def __init__(self, cluster: Unpacking, inst: Instance, rsc_id: str, node: ClusterNode) -> None:
        self.cluster = cluster
        self.inst = inst
        self.rsc_id = rsc_id
        self.node = node
        self.on_fail = IGNORE
        self.last_failure: etree._Element | None = None
        # the operation being replayed
        self.x: etree._Element = _NO_OP
        self.task = ""
        self.interval = self.target = 0
        self.masked = False

    def run(self, ops: list[etree._Element]) -> None:
        saved, self.inst.role = self.inst.role, UNKNOWN
        ops.reverse()  # Pacemaker prepends each entry to a list, then merge-sorts it
        ops.sort(key=CallOrder)
        for op in ops:
            self.op(op)
        self.finish()
        self.inst.role = max(saved, self.inst.role)

    def op(self, x: etree._Element) -> None:
        """``unpack_rsc_op``."""
        inst, node = self.inst, self.node
        task = x.get("operation")
        status = crm_int(x.get("op-status"), -2)
        if task is None or not PENDING <= status <= LAST_STATUS or task in ("notify", "meta-data"):
            return
        raw_rc = rc = crm_int(x.get("rc-code"), 0)
        interval = crm_int(x.get("interval"), 0)
        self.x, self.task, self.interval, self.target = x, task, interval, target_rc(x)
        self.masked = not inst.prim.bundled and masked_probe(task, interval, rc, status)
        old = status != NOT_INSTALLED and expired(
            self.cluster.config, inst.prim, self.rsc_id, x, node, now=self.cluster.now
        )
        rc, status = self.remap(rc, status)
        if old and self.masked and raw_rc != self.target:
            if inst.role <= STOPPED:
                inst.role = UNKNOWN
        elif old and rc != self.target and (interval == 0 or (node.online and not node.unclean)):
            pass
        elif self.masked:
            self.update(self.target)
        elif status == PENDING:
            if task == "start":
                inst.set_active()
            elif task == "promote":
                inst.role = PROMOTED
            if inst.pending is None and (interval != 0 or task != "monitor"):
                inst.pending = task
        elif status == DONE:
            self.update(rc)
        elif status != CANCELLED:
            self.failed(rc, status)

    def failed(self, rc: int, status: int) -> None:
        task, prim = self.task, self.inst.prim
        strategy = on_fail(self.cluster.config, prim, task, self.interval, self.inst.managed)
        if status == NOT_INSTALLED:
            if strategy == IGNORE:
                self.on_fail = MIGRATE
        elif status == NOT_CONNECTED and self.node.conn:
            conn = self.cluster.instances.get(self.node.conn)
            if conn is not None and conn.managed:
                conn.failed = True
        if status != NOT_INSTALLED and (
            strategy == IGNORE or (strategy == RESTART_CONTAINER and task == "stop")
        ):
            self.update(self.target)  # Pacemaker pretends it succeeded
            if strategy == RESTART_CONTAINER and self.on_fail <= RECOVER:
                self.on_fail = strategy
            return
        self.failure(rc, strategy)

    def remap(self, rc: int, status: int) -> tuple[int, int]:
        """``remap_operation``: judge the result against the expected one."""
        inst, task, interval, target = self.inst, self.task, self.interval, self.target
        if task == "monitor":
            rc = {190: 0, 191: 8}.get(rc, rc)  # degraded counts as running
        if self.masked:
            status, rc = DONE, 7
        if status not in (DONE, ERROR):
            return rc, status
        probe = task == "monitor" and interval == 0
        status = ERROR if target < 0 or target != rc else DONE
        if rc == 0 and probe and target == 7:
            status = DONE
        elif rc == 7 and (probe or target == rc or not inst.managed):
            status, inst.role, self.on_fail = DONE, STOPPED, IGNORE
        elif rc == 8:
            inst.role = PROMOTED
            if probe and rc != target:
                status = DONE
        elif rc in (9, 191):
            status, inst.role = ERROR, PROMOTED
        elif rc == 6:
            status = FATAL
        elif rc in (2, 3, 4, 5):
            if task == "stop" and not self.cluster.can_fence(self.node):
                inst.managed = False  # check_recoverable(): nothing more can be done
            status = NOT_SUPPORTED if rc == 3 and interval else HARD
        elif rc not in (0, 7) and status == DONE:
            status = ERROR
        return rc, status

    def update(self, rc: int) -> None:
        """``update_resource_state`` after an action that did what was expected."""
        inst, task = self.inst, self.task
        clear = True
        if rc == 5 or self.masked:
            inst.role, clear = STOPPED, False
        elif rc == 7:
            pass
        elif task == "monitor":
            last = self.last_failure
            clear = last is not None and _op_key(self.x) == _op_key(last)
            if inst.role < STARTED:
                inst.set_active()
        elif task in ("start", "migrate_from"):
            inst.role = STARTED
        elif task == "stop":
            inst.role = STOPPED
        elif task == "promote":
            inst.role = PROMOTED
        elif task == "demote":
            clear = self.on_fail == DEMOTE
            inst.role = UNPROMOTED
        elif task == "migrate_to":
            clear = False
            self.migrated_away(self.x)
        else:
            clear = False
            if inst.role < STARTED:
                inst.set_active()
        if clear and (
            self.on_fail in (BLOCK, IGNORE, DEMOTE, RECOVER, RESTART_CONTAINER)
            or (self.on_fail == RESET_REMOTE and not inst.prim.reconnect)
        ):
            self.on_fail = IGNORE

    def failure(self, rc: int, strategy: int) -> None:
        """``unpack_rsc_op_failure``: the resource stays (or becomes) active."""
        inst, task, x = self.inst, self.task, self.x
        self.last_failure = x
        self.on_fail = max(self.on_fail, strategy)
        if task == "migrate_to":
            self.migration_failed(x, "migrate_source", "migrate_from")
        elif task == "migrate_from":
            self.migration_failed(x, "migrate_target", "migrate_to")
        elif task == "promote":
            inst.role = PROMOTED
        elif task == "demote":
            inst.role = PROMOTED if strategy == BLOCK else STOPPED if rc == 7 else UNPROMOTED
        if task == "monitor" and self.interval == 0 and rc == 5:
            inst.role = STOPPED
        elif inst.role < STARTED:
            inst.set_active()

    def migrated_away(self, x: etree._Element) -> None:
        """``unpack_migrate_to_success`` (as fixed in Pacemaker 2.1.6): the
        resource may be live on the target, unless either side moved on."""
        history, inst, rid = self.cluster.history, self.inst, self.inst.prim.id
        source, target = x.get("migrate_source"), x.get("migrate_target")
        if not source or not target or source.lower() != self.node.name.lower():
            return
        source_newer = history.changed_after(rid, source, x, True)
        from_op = history.find(rid, "migrate_from", target, source, -1)
        from_rc, from_status = 0, PENDING
        if from_op is not None:
            if source_newer:
                return
            from_rc = crm_int(from_op.get("rc-code"), 0)
            from_status = crm_int(from_op.get("op-status"), PENDING)
        target_newer = history.newer_after_migration(rid, target, x, from_op)
        if source_newer and target_newer:
            return
        if from_rc == 0 and from_status == DONE:
            inst.role = STOPPED  # migrated: only the stop here is still to come
            return
        inst.role = STARTED
        to_node = self.cluster.config.node_named(target)
        active_there = to_node is not None and to_node.online and not target_newer
        if from_status != PENDING:  # the migrate_from failed
            if to_node is not None and active_there:
                inst.add_running(to_node)
            else:
                inst.failed = True
            return
        if to_node is not None and to_node.online and not history.ops(rid, target):
            return  # the target's history was cleaned; it will be probed
        if to_node is not None and active_there:
            inst.add_running(to_node)
            from_node = self.cluster.config.node_named(source)
            if from_node is not None and from_node.online:
                inst.partial_source = from_node
        elif not source_newer:
            inst.failed = True

    def migration_failed(self, x: etree._Element, here_attr: str, peer_task: str) -> None:
        """``unpack_migrate_to_failure``/``unpack_migrate_from_failure``: the
        resource may still be active on the peer node."""
        history, inst, rid = self.cluster.history, self.inst, self.inst.prim.id
        peer_attr = "migrate_target" if here_attr == "migrate_source" else "migrate_source"
        here, peer = x.get(here_attr), x.get(peer_attr)
        if not here or not peer or here.lower() != self.node.name.lower():
            return
        inst.role = STARTED
        peer_op = history.find(rid, peer_task, peer, here, 0)
        to_op, from_op = (x, peer_op) if peer_task == "migrate_from" else (peer_op, x)
        if history.ops(rid, peer) and not history.newer_after_migration(rid, peer, to_op, from_op):
            peer_node = self.cluster.config.node_named(peer)
            if peer_node is not None and peer_node.online:
                inst.add_running(peer_node)

    def finish(self) -> None:
        """``process_rsc_state``: record where the replayed history left it."""
        cluster, inst, node = self.cluster, self.inst, self.node
        active = inst.role > STOPPED
        if active and not node.online and not node.maintenance and inst.managed:
            if node.is_guest:
                inst.failed = True
                cluster.fence(node)
            elif cluster.config.stonith:
                cluster.fence(node)
        policy = IGNORE if node.unclean else self.on_fail
        if policy in (DEMOTE, RESTART_CONTAINER, RESET_REMOTE) or (policy == RECOVER and active):
            inst.failed = True
        if policy == BLOCK:
            inst.managed = False
        elif policy == FENCE:
            cluster.fence(node)
        elif policy == RESET_REMOTE and cluster.config.stonith and inst.prim.remote:
            remote = cluster.config.node_named(inst.prim.id)
            if remote is not None and not remote.is_guest and not remote.was_fenced:
                cluster.fence(remote)
        if active:
            inst.add_running(node)
            inst.failed |= policy != IGNORE
        elif inst.role == STOPPED and inst.partial_source is node and inst.running:
            inst.role = STARTED


def _op_key(op: etree._Element) -> str | None:
    return op.get("operation_key") or op.get("id")
