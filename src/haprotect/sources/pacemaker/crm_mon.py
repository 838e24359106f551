"""Placement as ``crm_mon`` reports it: the authority on where resources run.

``crm_mon --one-shot --inactive --output-as=xml`` prints a
``<pacemaker-result>`` (Pacemaker 2.0 and later) or, from older versions, a
``<crm_mon version=...>`` document. Both list ``<nodes>`` and a tree of
``<resources>`` (``resource``, ``group``, ``clone``, ``bundle``/``replica``)
whose primitives name the nodes they are active on.

Roles: ``Started`` is started, ``Promoted``/``Master`` promoted,
``Unpromoted``/``Slave`` unpromoted. While an action is in flight crm_mon
prints the action instead of the role; each maps to the role the resource
holds *now*, which is also what Pacemaker's own unpacking records:

* ``Starting``, ``Migrating``: started (unpromoted inside a promotable
  clone); Pacemaker counts a pending start as active.
* ``Stopping``: started, or unpromoted inside a promotable clone, since
  Pacemaker demotes an instance before it stops it.
* ``Promoting``: promoted; Pacemaker records a pending promote as promoted.
* ``Demoting``: promoted; the instance stays promoted until the demote ends.

The pure-Python reader of the CIB status section applies the same mapping,
so the two readers agree.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from haprotect.errors import ClusterConfigError, ComponentError
from haprotect.model.topology import Node, Role
from haprotect.sources.pacemaker.cli_tools import run_tool
from haprotect.sources.pacemaker.state import ClusterState, strip_instance

#: crm_mon role text -> role, outside a promotable clone
_ROLES: dict[str, Role] = {
    "started": Role.STARTED,
    "starting": Role.STARTED,
    "stopping": Role.STARTED,
    "migrating": Role.STARTED,
    "promoted": Role.PROMOTED,
    "master": Role.PROMOTED,
    "promoting": Role.PROMOTED,
    "demoting": Role.PROMOTED,
    "unpromoted": Role.UNPROMOTED,
    "slave": Role.UNPROMOTED,
}
#: a running instance of a promotable clone is at least unpromoted
_IN_PROMOTABLE = {"started", "starting", "stopping"}
_RANK = {Role.STARTED: 0, Role.UNPROMOTED: 1, Role.PROMOTED: 2}
_ROOTS = ("pacemaker-result", "crm_mon")


def display_role(text: str, promotable: bool) -> Role | None:
    """Map crm_mon's role text (or an in-flight action) to a role; None when inactive."""
    key = text.lower()
    if promotable and key in _IN_PROMOTABLE:
        return Role.UNPROMOTED
    return _ROLES.get(key)


def add_placement(
    placement: dict[str, dict[str, Role]], resource_id: str, node: str, role: Role
) -> None:
    """Record ``role`` on ``node``; where instances meet on a node, the highest role wins."""
    on_nodes = placement.setdefault(strip_instance(resource_id), {})
    current = on_nodes.get(node)
    if current is None or _RANK[role] > _RANK[current]:
        on_nodes[node] = role


def state_from_crm_mon(root: etree._Element) -> ClusterState:
    """Read nodes and placement from crm_mon's XML output."""
    if root.tag not in _ROOTS:
        raise ClusterConfigError(f"not crm_mon XML output: root element is <{root.tag}>")
    error = reported_error(root)
    if error is not None:
        raise ComponentError(f"crm_mon could not read the cluster: {error}")
    nodes_el = root.find("nodes")
    nodes = tuple(
        Node(name=el.get("name", ""), online=el.get("online") == "true")
        for el in (nodes_el.iterfind("node") if nodes_el is not None else ())
    )
    placement: dict[str, dict[str, Role]] = {}
    resources = root.find("resources")
    if resources is not None:
        _walk(resources, False, placement)
    return ClusterState(nodes=nodes, placement=placement)


def reported_error(root: etree._Element) -> str | None:
    """The error crm_mon printed instead of a cluster state, if it did.

    crm_mon 2.1 exits 0 with ``<status code="0">`` and an ``<errors>`` list
    when it cannot use a CIB (for example one that fails schema validation).
    """
    status = root.find("status")
    if status is None:
        return None
    errors = [" ".join(e.text.split()) for e in status.iterfind("errors/error") if e.text]
    errors = [e for e in errors if e]
    code = status.get("code", "0")
    has_state = root.find("nodes") is not None or root.find("resources") is not None
    if code == "0" and (has_state or not errors):
        return None
    return errors[0] if errors else status.get("message") or f"status {code}"


def _walk(parent: etree._Element, promotable: bool, placement: dict[str, dict[str, Role]]) -> None:
    for el in parent:
        if el.tag == "resource":
            _primitive(el, promotable, placement)
        elif el.tag == "clone":
            _walk(el, promotable or el.get("multi_state") == "true", placement)
        elif el.tag in ("group", "bundle", "replica"):
            _walk(el, promotable, placement)


def _primitive(el: etree._Element, promotable: bool, placement: dict[str, dict[str, Role]]) -> None:
    if el.get("active") == "false":
        return
    role = display_role(el.get("role", ""), promotable)
    resource_id = el.get("id")
    if role is None or not resource_id:
        return
    for node in el.iterfind("node"):
        name = node.get("name")
        if name:
            add_placement(placement, resource_id, name, role)


def run_crm_mon(cib_file: Path | None, timeout: float) -> bytes:
    """Run ``crm_mon --one-shot --inactive --output-as=xml`` and return its stdout.

    With ``cib_file``, crm_mon reads that file (``CIB_file``) instead of the
    live cluster. Every failure becomes a one-line :class:`ComponentError`,
    including the one crm_mon reports only inside its XML while exiting 0.
    """
    output = run_tool(["crm_mon", "--one-shot", "--inactive", "--output-as=xml"], timeout, cib_file)
    if b"<errors>" in output or b"<status" not in output[-512:]:
        where = f" on {cib_file}" if cib_file is not None else ""
        _check_output(output, where)
    return output


def _check_output(output: bytes, where: str) -> None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(output, parser)
    except etree.XMLSyntaxError:
        raise ComponentError(f"crm_mon printed malformed XML{where}") from None
    error = reported_error(root) if root is not None else "no output"
    if error is not None:
        raise ComponentError(f"crm_mon could not read the cluster{where}: {error}")
