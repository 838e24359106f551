"""The lab's own cluster configuration, written as a Pacemaker CIB.

The lab runs no Pacemaker, but it describes itself the way a Pacemaker
cluster of the same shape would, so that ``haprotect discover`` reads it
like any other cluster:

- ``ms_pgsql_shop``: a promotable clone of ``ocf:heartbeat:pgsqlms``. The two
  lab nodes share one machine, so their data directories and ports differ;
  each node's ``pgdata`` and ``pgport`` sit in an ``instance_attributes`` set
  guarded by a ``#uname eq nodeN`` rule, as a real cluster with differing
  paths would have them.
- ``shop``: a group of ``fs_shared`` (``ocf:heartbeat:Filesystem``, a bind
  mount standing for the shared HA filesystem), ``orders_app``
  (``ocf:heartbeat:anything``, the application tier) and ``web_front``
  (``ocf:heartbeat:nginx``, the front end's role; the lab's front end is a
  small Python server), colocated with the promoted PostgreSQL instance and
  started after its promotion; with ``--web-gate haproxy`` the group ends
  with ``web_lb`` (``ocf:heartbeat:haproxy``, its ``conffile`` the lab's
  ``haproxy.cfg``), so the policy gives the front end a ``haproxy`` quiescer.
- a status section whose operation history (``lrm_rsc_op``) says which node
  is promoted and where the group runs, or that everything is stopped.

:func:`render_cib` is pure: the same :class:`CibSpec` gives the same bytes.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

from lxml import etree

CLUSTER_NAME = "haprotect-lab"
#: What the CIB says about its writer when the Pacemaker tools cannot be asked
#: (``cibadmin --empty`` gives theirs): Pacemaker 2.1.5's. A CIB that claims a
#: newer feature set than the tools' is one they refuse to modify.
FEATURE_SET = "3.16.1"
SCHEMA = "pacemaker-3.9"
PGSQL = "pgsql_shop"
PROMOTABLE = "ms_pgsql_shop"
GROUP = "shop"
FILESYSTEM = "fs_shared"
APP = "orders_app"
WEB = "web_front"
LB = "web_lb"
_PROMOTED_INTERVAL = 15000
_UNPROMOTED_INTERVAL = 16000
_MONITOR_INTERVAL = 20000


@dataclass(frozen=True, slots=True)
class CibNode:
    """One lab node as the CIB describes it: its Pacemaker id, data directory and port."""

    name: str
    node_id: str
    pgdata: str
    pgport: int


@dataclass(frozen=True, slots=True)
class CibSpec:
    """Everything :func:`render_cib` needs to describe the lab as a Pacemaker cluster."""

    nodes: tuple[CibNode, ...]
    primary: str
    bindir: str
    socket_dir: str
    system_user: str
    shared_dir: str
    python: str  #: the interpreter that runs the app and web tiers
    lab_dir: str
    run_dir: str
    log_dir: str
    epoch: int = 1
    running: bool = True  #: False: every resource is recorded as stopped
    last_change: int = 0  #: seconds since the epoch, for the operation history
    feature_set: str = FEATURE_SET  #: the writer's, as tools_feature_set() finds it
    #: HAProxy in front of the web tier: its binary and configuration (None: the HTTP gate)
    haproxy: tuple[str, str] | None = None


@functools.cache
def tools_feature_set() -> str:
    """The CIB feature set of the installed Pacemaker tools (``cibadmin --empty``)."""
    cibadmin = shutil.which("cibadmin")
    if cibadmin is None:
        return FEATURE_SET
    try:
        done = subprocess.run(
            [cibadmin, "--empty"], capture_output=True, text=True, timeout=30, check=False
        )
        found = etree.fromstring(done.stdout.encode()).get("crm_feature_set")
    except (OSError, subprocess.SubprocessError, etree.XMLSyntaxError):
        return FEATURE_SET
    return found or FEATURE_SET


def render_cib(spec: CibSpec) -> bytes:
    """The whole CIB, configuration and status, as pretty-printed XML."""
    if spec.primary not in {n.name for n in spec.nodes}:
        raise ValueError(f"primary {spec.primary!r} is not a lab node")
    cib = etree.Element(
        "cib",
        {
            "crm_feature_set": spec.feature_set,
            "validate-with": SCHEMA,
            "epoch": str(spec.epoch),
            "num_updates": "0",
            "admin_epoch": "0",
            "have-quorum": "1",
            "dc-uuid": spec.nodes[0].node_id,
        },
    )
    configuration = etree.SubElement(cib, "configuration")
    _crm_config(configuration)
    nodes = etree.SubElement(configuration, "nodes")
    for node in spec.nodes:
        etree.SubElement(nodes, "node", id=node.node_id, uname=node.name)
    _resources(etree.SubElement(configuration, "resources"), spec)
    _constraints(etree.SubElement(configuration, "constraints"))
    _status(etree.SubElement(cib, "status"), spec)
    return etree.tostring(cib, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def _nvpairs(parent: etree._Element, set_id: str, tag: str, pairs: dict[str, str]) -> None:
    attrs = etree.SubElement(parent, tag, id=set_id)
    for name, value in pairs.items():
        etree.SubElement(attrs, "nvpair", id=f"{set_id}-{name}", name=name, value=value)


def _crm_config(configuration: etree._Element) -> None:
    crm_config = etree.SubElement(configuration, "crm_config")
    _nvpairs(
        crm_config,
        "cib-bootstrap-options",
        "cluster_property_set",
        {
            "cluster-name": CLUSTER_NAME,
            "cluster-infrastructure": "corosync",
            # The lab has no fencing devices: its "nodes" are directories on one machine.
            "stonith-enabled": "false",
        },
    )


def _primitive(
    parent: etree._Element, rid: str, klass: str, provider: str, rtype: str
) -> etree._Element:
    return etree.SubElement(
        parent, "primitive", {"id": rid, "class": klass, "provider": provider, "type": rtype}
    )


def _operations(primitive: etree._Element, ops: list[dict[str, str]]) -> None:
    operations = etree.SubElement(primitive, "operations")
    rid = primitive.get("id")
    for op in ops:
        suffix = op["name"] + (f"-{op['role'].lower()}" if "role" in op else "")
        etree.SubElement(operations, "op", {"id": f"{rid}-{suffix}", **op})


def _resources(resources: etree._Element, spec: CibSpec) -> None:
    clone = etree.SubElement(resources, "clone", id=PROMOTABLE)
    _nvpairs(
        clone,
        f"{PROMOTABLE}-meta_attributes",
        "meta_attributes",
        {"promotable": "true", "promoted-max": "1", "clone-max": "2", "notify": "true"},
    )
    pgsql = _primitive(clone, PGSQL, "ocf", "heartbeat", "pgsqlms")
    _nvpairs(
        pgsql,
        f"{PGSQL}-instance_attributes",
        "instance_attributes",
        {"bindir": spec.bindir, "pghost": spec.socket_dir, "system_user": spec.system_user},
    )
    for rank, node in enumerate(spec.nodes):
        set_id = f"{PGSQL}-{node.name}"
        attrs = etree.SubElement(
            pgsql, "instance_attributes", id=set_id, score=str(len(spec.nodes) - rank)
        )
        rule = etree.SubElement(attrs, "rule", id=f"{set_id}-rule", score="0")
        etree.SubElement(
            rule,
            "expression",
            id=f"{set_id}-rule-expression",
            attribute="#uname",
            operation="eq",
            value=node.name,
        )
        for name, value in (("pgdata", node.pgdata), ("pgport", str(node.pgport))):
            etree.SubElement(attrs, "nvpair", id=f"{set_id}-{name}", name=name, value=value)
    _operations(
        pgsql,
        [
            {"name": "start", "interval": "0s", "timeout": "60s"},
            {"name": "stop", "interval": "0s", "timeout": "60s"},
            {"name": "promote", "interval": "0s", "timeout": "30s"},
            {"name": "demote", "interval": "0s", "timeout": "120s"},
            {"name": "notify", "interval": "0s", "timeout": "60s"},
            {"name": "monitor", "interval": "15s", "timeout": "10s", "role": "Promoted"},
            {"name": "monitor", "interval": "16s", "timeout": "10s", "role": "Unpromoted"},
        ],
    )
    group = etree.SubElement(resources, "group", id=GROUP)
    fs = _primitive(group, FILESYSTEM, "ocf", "heartbeat", "Filesystem")
    _nvpairs(
        fs,
        f"{FILESYSTEM}-instance_attributes",
        "instance_attributes",
        # A bind mount of the directory onto itself: the lab's stand-in for a shared disk.
        {
            "device": spec.shared_dir,
            "directory": spec.shared_dir,
            "fstype": "none",
            "options": "bind",
        },
    )
    _operations(fs, [{"name": "monitor", "interval": "20s", "timeout": "40s"}])
    app = _primitive(group, APP, "ocf", "heartbeat", "anything")
    _nvpairs(
        app,
        f"{APP}-instance_attributes",
        "instance_attributes",
        {
            "binfile": spec.python,
            "cmdline_options": f"-m haprotect.lab.app --lab {spec.lab_dir}",
            "pidfile": f"{spec.run_dir}/app.pid",
            "logfile": f"{spec.log_dir}/app.log",
        },
    )
    _operations(app, [{"name": "monitor", "interval": "20s", "timeout": "20s"}])
    web = _primitive(group, WEB, "ocf", "heartbeat", "nginx")
    _nvpairs(
        web,
        f"{WEB}-instance_attributes",
        "instance_attributes",
        {
            "httpd": spec.python,
            "options": f"-m haprotect.lab.web --lab {spec.lab_dir}",
            "pid": f"{spec.run_dir}/web.pid",
        },
    )
    _operations(web, [{"name": "monitor", "interval": "20s", "timeout": "20s"}])
    if spec.haproxy is not None:
        binary, conffile = spec.haproxy
        lb = _primitive(group, LB, "ocf", "heartbeat", "haproxy")
        _nvpairs(
            lb,
            f"{LB}-instance_attributes",
            "instance_attributes",
            {"binpath": binary, "conffile": conffile, "pidfile": f"{spec.run_dir}/gate.pid"},
        )
        _operations(lb, [{"name": "monitor", "interval": "20s", "timeout": "20s"}])


def _constraints(constraints: etree._Element) -> None:
    etree.SubElement(
        constraints,
        "rsc_colocation",
        {
            "id": f"{GROUP}-with-{PROMOTABLE}",
            "score": "INFINITY",
            "rsc": GROUP,
            "with-rsc": PROMOTABLE,
            "with-rsc-role": "Promoted",
        },
    )
    etree.SubElement(
        constraints,
        "rsc_order",
        {
            "id": f"{PROMOTABLE}-then-{GROUP}",
            "first": PROMOTABLE,
            "first-action": "promote",
            "then": GROUP,
            "then-action": "start",
            "kind": "Mandatory",
        },
    )


class _History:
    """Operation records for one node, with call ids in the order they ran."""

    def __init__(self, parent: etree._Element, node: CibNode, spec: CibSpec) -> None:
        self.node = node
        self.spec = spec
        self.resources = etree.SubElement(
            etree.SubElement(parent, "lrm", id=node.node_id), "lrm_resources"
        )
        self.call = 0

    def resource(
        self, rid: str, rtype: str, ops: list[tuple[str, int, int]], provider: str = "heartbeat"
    ) -> None:
        """``ops``: (operation, interval in ms, return code), oldest first."""
        element = etree.SubElement(
            self.resources,
            "lrm_resource",
            {"id": rid, "type": rtype, "class": "ocf", "provider": provider},
        )
        for operation, interval, rc in ops:
            self.call += 1
            key = f"{self.call}:1:{rc}:00000000-0000-0000-0000-000000000000"
            etree.SubElement(
                element,
                "lrm_rsc_op",
                {
                    "id": f"{rid}_{operation}_{interval}",
                    "operation": operation,
                    "crm-debug-origin": "do_update_resource",
                    "crm_feature_set": self.spec.feature_set,
                    "transition-key": key,
                    "transition-magic": f"0:{rc};{key}",
                    "exit-reason": "",
                    "on_node": self.node.name,
                    "call-id": str(self.call),
                    "rc-code": str(rc),
                    "op-status": "0",
                    "interval": str(interval),
                    "last-rc-change": str(self.spec.last_change),
                    "exec-time": "10",
                    "queue-time": "0",
                    "op-digest": "00000000000000000000000000000000",
                },
            )


def _status(status: etree._Element, spec: CibSpec) -> None:
    group = [(FILESYSTEM, "Filesystem"), (APP, "anything"), (WEB, "nginx")]
    if spec.haproxy is not None:
        group.append((LB, "haproxy"))
    for node in spec.nodes:
        state = etree.SubElement(
            status,
            "node_state",
            {
                "id": node.node_id,
                "uname": node.name,
                "in_ccm": "true",
                "crmd": "online",
                "crm-debug-origin": "do_update_resource",
                "join": "member",
                "expected": "member",
            },
        )
        history = _History(state, node, spec)
        promoted = node.name == spec.primary
        if not spec.running:
            pg_ops = [("monitor", 0, 7), ("start", 0, 0), ("stop", 0, 0)]
        elif promoted:
            pg_ops = [
                ("monitor", 0, 7),
                ("start", 0, 0),
                ("promote", 0, 0),
                ("monitor", _PROMOTED_INTERVAL, 8),
            ]
        else:
            pg_ops = [("monitor", 0, 7), ("start", 0, 0), ("monitor", _UNPROMOTED_INTERVAL, 0)]
        history.resource(PGSQL, "pgsqlms", pg_ops)
        for rid, rtype in group:
            if spec.running and promoted:
                ops = [("monitor", 0, 7), ("start", 0, 0), ("monitor", _MONITOR_INTERVAL, 0)]
            elif promoted:
                ops = [("monitor", 0, 7), ("start", 0, 0), ("stop", 0, 0)]
            else:
                ops = [("monitor", 0, 7)]
            history.resource(rid, rtype, ops)
