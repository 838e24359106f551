"""The inventory file: defaults, overrides, errors with lines, and the lab's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from haprotect.errors import InputError
from haprotect.lab.inventory import render_inventory
from haprotect.lab.state import LabState, NodeState
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.plan.inventory import default_inventory, load_inventory, parse_inventory, this_host

TEXT = """\
apiVersion: haprotect/v1
kind: Inventory
nodes:
  node1:
    host: 10.0.0.1
    local: false
    locations:
      pgsqld: {pgport: 5433, pgdata: /srv/pg1}
      c2/pgsqld: {pgport: "6000"}
  node2:
    host: 127.0.0.1
  node3:
"""


def test_overrides_apply_per_node_and_cluster() -> None:
    inv = parse_inventory(TEXT, "inv.yaml")
    assert inv.origin == "inv.yaml"
    node1 = inv.access("node1")
    assert (node1.host, node1.local) == ("10.0.0.1", False)
    base = {"pgdata": "/srv/pg", "pgport": "5432", "bindir": "/usr/bin"}
    assert inv.location("node1", "c1", "pgsqld", base) == {
        "pgdata": "/srv/pg1",
        "pgport": "5433",
        "bindir": "/usr/bin",
    }
    assert inv.location("node1", "c2", "pgsqld", base)["pgport"] == "6000"
    assert inv.location("node2", "c1", "pgsqld", base) == base


def test_defaults_host_is_the_name_and_local_follows_the_host() -> None:
    inv = parse_inventory(TEXT, "inv.yaml")
    assert inv.access("node2").local  # loopback
    node3 = inv.access("node3")
    assert (node3.host, node3.local) == ("node3", node3.name == this_host())
    unknown = inv.access("node9")
    assert (unknown.host, unknown.local) == ("node9", False)


def test_without_a_file_only_this_machine_is_local() -> None:
    inv = default_inventory()
    assert inv.access(this_host()).local
    assert not inv.access("not-" + this_host()).local
    assert load_inventory(None) == inv
    explicit = Inventory((NodeAccess("a", "a.example", True),), this_host="b")
    assert explicit.access("a").local and not explicit.access("b.example").local


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes:\n  node1:\n    hots: x\n", "inv.yaml:3: nodes.node1.hots: unknown field"),
        ("nodes:\n  node1:\n    local: yes please\n", "inv.yaml:3: nodes.node1.local:"),
        ("kind: Policy\n", "inv.yaml:1: kind:"),
        ("nodes: [a, b]\n", "inv.yaml:1: nodes:"),
        ("- 1\n", "inv.yaml:1: expected a mapping with nodes"),
        (
            "nodes:\n  n:\n    locations:\n      pg: {pgport: [1]}\n",
            "inv.yaml:4: nodes.n.locations.pg.pgport",
        ),
    ],
)
def test_errors_name_the_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_inventory(text, "inv.yaml")
    assert str(caught.value).startswith(message)


def test_the_labs_inventory_gives_each_node_its_port_and_data_directory(tmp_path: Path) -> None:
    state = LabState(
        dir=str(tmp_path),
        pg_version=15,
        bindir="/usr/lib/postgresql/15/bin",
        run_as=None,
        nodes=(
            NodeState("node1", "1", 5501, f"{tmp_path}/node1/pgdata"),
            NodeState("node2", "2", 5502, f"{tmp_path}/node2/pgdata"),
        ),
        primary="node1",
        app_port=5503,
        web_port=5504,
    )
    path = tmp_path / "inventory.yaml"
    path.write_bytes(render_inventory(state))
    inv = load_inventory(path)
    base = {"pgdata": f"{tmp_path}/node1/pgdata", "pgport": "5501"}
    assert inv.location("node2", "haprotect-lab", "pgsql_shop", base) == {
        "pgdata": f"{tmp_path}/node2/pgdata",
        "pgport": "5502",
    }
    assert all(
        inv.access(n).local and inv.access(n).host == "127.0.0.1" for n in ("node1", "node2")
    )
