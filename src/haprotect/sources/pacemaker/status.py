"""Placement read from the CIB status section, without Pacemaker's tools.

This replays what Pacemaker's scheduler library does when it unpacks a CIB
(``lib/pengine/unpack.c`` of Pacemaker 2.1), closely enough that the result
agrees with ``crm_mon``:

* Node online state comes from ``node_state`` (``determine_online_status``):
  ``in_ccm``, ``crmd``, ``join`` and ``expected``, with the transient
  ``shutdown`` and ``terminate`` attributes.
* Each node's ``lrm_resource`` histories are replayed
  (:mod:`~haprotect.sources.pacemaker.status_history`): a start, promote or
  successful monitor makes a resource active there, monitor rc 8 promoted,
  rc 7 stopped; a failed action leaves it active unless ``on-fail=ignore``.
  Running instances of promotable clones that are not promoted are
  unpromoted.
* Offline cluster nodes are read only when fencing is enabled (their
  resources count until the node is fenced, as crm_mon shows them);
  Pacemaker Remote and guest nodes are read once their connection (and
  container) is started, which may take several passes.
* Actions in flight are shown as crm_mon shows them and map to roles as
  :mod:`~haprotect.sources.pacemaker.crm_mon` documents.

Helpers: ``status_config`` (the configuration facts the replay needs),
``status_ops`` (operation order and cross-node look-ups), ``status_failures``
(``on-fail`` and ``failure-timeout``).
"""

from __future__ import annotations

import time

from lxml import etree

from haprotect.model.topology import Node, Role
from haprotect.sources.pacemaker.crm_mon import add_placement, display_role
from haprotect.sources.pacemaker.state import ClusterState, strip_instance
from haprotect.sources.pacemaker.status_config import (
    ClusterNode,
    Config,
    is_true,
    parse_config,
)
from haprotect.sources.pacemaker.status_history import (
    STARTED,
    STOPPED,
    UNKNOWN,
    Instance,
    Replay,
)
from haprotect.sources.pacemaker.status_ops import History

_ROLE_TEXT = ("Unknown", "Stopped", "Started", "Unpromoted", "Promoted")
#: crm_mon's text for a resource with an action in flight
_PENDING_TEXT = {
    "start": "Starting",
    "stop": "Stopping",
    "migrate_to": "Migrating",
    "migrate_from": "Migrating",
    "promote": "Promoting",
    "demote": "Demoting",
}


def state_from_status(cib: etree._Element, now: float | None = None) -> ClusterState:
    """Nodes and placement according to the CIB's ``<status>`` section.

    ``now`` (seconds since the epoch) decides which failures have expired
    under ``failure-timeout``; it defaults to the current time, as crm_mon's.
    """
    return _Unpacker(cib, time.time() if now is None else now).run()


class _Unpacker:
    """``unpack_status``: node states first, then histories in as many passes
    as remote and guest node connections need."""

    def __init__(self, cib: etree._Element, now: float) -> None:
        self.config: Config = parse_config(cib)
        self.now = now
        self.status = cib.find("status")
        self.states = [] if self.status is None else list(self.status.iterfind("node_state"))
        self.instances: dict[str, Instance] = {}
        self.history = History(self.status)

    def run(self) -> ClusterState:
        self._node_states()
        while self._pass(fence=False):
            pass
        if self.config.stonith:  # nodes still unread are unseen: read them, they get fenced
            self._pass(fence=True)
        for node in self.config.nodes:
            if node.kind == "remote" and not node.unpacked:
                self._remote_online(node)
        nodes = tuple(Node(name=n.name, online=n.online) for n in self.config.sorted_nodes())
        return ClusterState(nodes=nodes, placement=self._placement())

    def _node(self, state: etree._Element) -> ClusterNode | None:
        node_id, uname = state.get("id"), state.get("uname")
        return self.config.find_node(node_id, uname) if node_id and uname else None

    def _node_states(self) -> None:
        """``unpack_node_state``: cluster nodes' state, before any history."""
        for state in self.states:
            node = self._node(state)
            if node is not None and node.kind == "remote":
                node.was_fenced = state.get("node_fenced", "0") not in ("0", "")
            if node is None or node.kind == "remote":
                continue
            node.attrs.update(_attributes(state))
            node.maintenance = is_true(node.attrs.get("maintenance"))
            node.unclean = False
            _cluster_online(state, node, self.config.stonith)

    def _pass(self, *, fence: bool) -> bool:
        """``unpack_node_history``: read every history that can be read now.

        Nodes are looked up on each pass, as reading a history can create the
        node of an orphaned remote connection.
        """
        progress = False
        for state in self.states:
            node = self._node(state)
            if node is not None and not node.unpacked and (fence or self._ready(node)):
                self._unpack_node(state, node)
                progress = True
        return progress

    def _ready(self, node: ClusterNode) -> bool:
        """Whether ``unpack_node_history`` reads this node's history in this pass."""
        if node.kind != "remote":
            return self.config.stonith or self.config.shutdown_lock or node.online
        prim = self.config.connection(node)
        if prim is None:
            return False
        conn = self.instances.get(prim.id)
        conn_role = UNKNOWN if conn is None else conn.role
        if prim.container is not None:
            box = self.instances.get(prim.container)
            return conn_role == STARTED and box is not None and box.role == STARTED
        return self.config.shutdown_lock or conn_role == STARTED

    def _unpack_node(self, state: etree._Element, node: ClusterNode) -> None:
        node.unpacked = True
        if node.kind == "remote":
            self._remote_online(node)
            if not node.requires_reset:
                node.unclean = False
            node.attrs.update(_attributes(state))
            conn = self.instances.get(node.conn) if node.conn else None
            if is_true(node.attrs.get("maintenance")) or (conn is not None and not conn.managed):
                node.maintenance = True
        for entry in state.iterfind("lrm/lrm_resources/lrm_resource"):
            rsc_id = entry.get("id")
            ops = list(entry.iterfind("lrm_rsc_op"))
            if not rsc_id or not ops:
                continue
            prim, key = self.config.resolve(rsc_id, node.name)
            if prim is None:
                prim = self.config.orphan(rsc_id, entry)
            inst = self.instances.get(key)
            if inst is None:
                inst = self.instances[key] = Instance(prim)
            Replay(self, inst, rsc_id, node).run(ops)

    def _remote_online(self, node: ClusterNode) -> None:
        """``determine_remote_online_status``: a remote node is up while its
        connection is started and neither it nor its container failed."""
        conn = self.instances.get(node.conn) if node.conn else None
        if conn is None:
            node.online = False
            return
        box = self.instances.get(conn.prim.container) if conn.prim.container else None
        host = conn.running[0] if conn.prim.container and len(conn.running) == 1 else None
        if conn.role == STARTED:
            node.online = True
        if box is not None and box.failed:
            node.online, node.requires_reset = False, True
        elif conn.failed:
            node.online = False
        elif conn.role == STOPPED or (box is not None and box.role == STOPPED):
            node.online, node.requires_reset = False, False
        elif host is not None and not host.online and host.unclean:
            node.online, node.requires_reset = False, True

    def fence(self, node: ClusterNode) -> None:
        """``pe_fence_node``: a guest node is fenced by failing its container."""
        conn = self.config.connection(node)
        if node.is_guest and conn is not None and conn.container is not None:
            box = self.instances.get(conn.container)
            container = self.config.prims.get(conn.container)
            if box is None and container is not None:
                box = self.instances[conn.container] = Instance(container)
            if box is not None:
                box.failed = True
        else:
            node.unclean = True

    def can_fence(self, node: ClusterNode) -> bool:
        config = self.config
        if not (config.stonith and config.has_fencing_device):
            return False
        return config.have_quorum or config.no_quorum_ignore or node.online

    def _placement(self) -> dict[str, dict[str, Role]]:
        """What crm_mon lists: instances active somewhere (``native_active``)."""
        placement: dict[str, dict[str, Role]] = {}
        for key, inst in self.instances.items():
            if not any(n.unclean or n.online or not inst.managed for n in inst.running):
                continue
            text = _PENDING_TEXT.get(inst.pending or "", _ROLE_TEXT[inst.role])
            role = display_role(text, inst.prim.promotable)
            if role is None:
                continue
            resource_id = strip_instance(key.partition("\0")[0])
            for node in inst.running:
                add_placement(placement, resource_id, node.name, role)
        return placement


def _cluster_online(state: etree._Element, node: ClusterNode, stonith: bool) -> None:
    """``determine_online_status`` for a cluster node.

    ``in_ccm`` and ``crmd`` are ``true``/``online`` in older CIBs and the
    time the node joined (``0`` when it is out) in newer ones.
    """
    in_ccm, crmd = state.get("in_ccm"), state.get("crmd")
    join, expected = (state.get("join") or "").lower(), (state.get("expected") or "down").lower()
    in_cluster = is_true(in_ccm) or _timestamp(in_ccm)
    peer_up = (crmd or "").lower() == "online" or _timestamp(crmd)
    node.shutdown = node.attrs.get("shutdown", "0") != "0"
    expected_up = not node.shutdown and expected == "member"
    if node.kind == "ping":
        node.online = False
    elif not stonith:
        node.online = in_cluster and peer_up and join == "member"
        node.unclean = in_cluster and not peer_up and expected_up
    else:
        terminate = node.attrs.get("terminate", "")
        do_terminate = is_true(terminate) or terminate[:1] in tuple("123456789")
        node.online = peer_up if node.shutdown else in_cluster
        if node.shutdown:
            pass
        elif in_ccm is None or join == "nack":
            node.unclean = True
        elif not do_terminate and expected == "down":
            pass
        elif do_terminate and join == "down" and not in_cluster and not peer_up:
            node.online = False
        elif not (in_cluster and peer_up) or do_terminate:
            node.unclean = True  # lost, or asked to go: it will be fenced
        elif join not in ("member", "pending", "down"):
            node.unclean = True  # an unknown state


def _timestamp(value: str | None) -> bool:
    return value is not None and value.isdigit() and int(value) > 0


def _attributes(state: etree._Element) -> dict[str, str]:
    """A node's transient attributes (fail counts, shutdown, maintenance...)."""
    pairs: dict[str, str] = {}
    for pair in state.iterfind("transient_attributes/instance_attributes/nvpair"):
        name, value = pair.get("name"), pair.get("value")
        if name is not None and value is not None:
            pairs[name] = value
    return pairs
