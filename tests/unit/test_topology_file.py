"""The topology_file source: a hand-written YAML file to a Topology."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests.golden_files import check_golden

from haprotect.errors import ClusterConfigError
from haprotect.model.topology import Manager, Replication, Role, Topology
from haprotect.model.topology_json import topology_from_json, topology_to_json
from haprotect.sources.base import DiscoverOptions
from haprotect.sources.topology_file import TopologyFileSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HEADER = "apiVersion: haprotect/v1\nkind: Topology\nclusters:\n"


def discover(url: str) -> Topology:
    return TopologyFileSource().discover(url, DiscoverOptions())


def from_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Topology:
    """Discover a file holding HEADER then ``body`` (dedented, indented under clusters)."""
    monkeypatch.chdir(tmp_path)
    Path("t.yaml").write_text(HEADER + textwrap.indent(textwrap.dedent(body), "  "))
    return discover("t.yaml")


def error_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    with pytest.raises(ClusterConfigError) as caught:
        from_text(tmp_path, monkeypatch, body)
    message = str(caught.value)
    assert "\n" not in message
    return message


# The smallest file: HEADER is lines 1-3, so the cluster starts on line 4.
MINIMAL = """\
- name: c
  nodes: [n1, n2]
  datasets:
    - id: d
      kind: filesystem
      location: {directory: /srv}
      replication: replicated
      primary: n1
      standbys: [n2]
"""


# -- happy path -------------------------------------------------------------


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> Topology:
    monkeypatch.chdir(FIXTURES)
    return discover("topology/shop.yaml")


def test_shop_matches_golden(shop: Topology) -> None:
    check_golden("shop.topology.json", topology_to_json(shop))


def test_shop_json_round_trips(shop: Topology) -> None:
    assert topology_from_json(topology_to_json(shop)) == shop


def test_shop_cluster(shop: Topology) -> None:
    (cluster,) = shop.clusters
    assert cluster.name == "shop"
    assert cluster.manager is Manager.FILE
    assert [(n.name, n.online) for n in cluster.nodes] == [
        ("db1", True),
        ("db2", True),
        ("web1", True),
        ("web2", False),
    ]
    pgdata = cluster.dataset("pgdata")
    assert pgdata.resource == "pg"
    assert pgdata.replication is Replication.REPLICATED
    assert pgdata.location == {"pgdata": "/var/lib/postgresql/15/main", "port": "5432"}
    assert pgdata.why == (
        "HA by default: declared replicated in topology file topology/shop.yaml line 20",
    )
    assert cluster.dataset("uploads").why == (
        "declared HA in topology file topology/shop.yaml line 30",
    )
    assert not cluster.dataset("sessions").ha


def test_shop_resources(shop: Topology) -> None:
    resources = {r.id: r for r in shop.clusters[0].resources}
    assert list(resources) == ["nginx", "pg", "uploads", "sessions", "orders", "payments"]
    assert resources["nginx"].agent == "systemd:nginx"
    assert resources["pg"].agent == "manual"
    assert resources["pg"].placement == {"db1": Role.PROMOTED, "db2": Role.UNPROMOTED}
    # shared storage runs where it is mounted; a shared standby is a takeover node
    assert resources["uploads"].placement == {"web1": Role.STARTED}
    assert resources["orders"].placement == {}


def test_shop_tiers_are_bottom_up(shop: Topology) -> None:
    (app,) = shop.clusters[0].applications
    assert [t.name for t in app.tiers] == ["database", "app", "web"]
    web = app.tiers[2]
    assert web.resources == ("nginx", "uploads", "sessions")
    assert web.depends_on == ("app",)


def test_shop_dependencies(shop: Topology) -> None:
    deps = [(d.source, d.target, d.kind) for d in shop.clusters[0].dependencies]
    assert deps[:2] == [("orders", "pg", "tier"), ("payments", "pg", "tier")]
    assert ("nginx", "orders", "tier") in deps
    assert deps[-1] == ("payments", "orders", "order")
    assert len(deps) == len(set(deps))


def test_file_url(tmp_path: Path) -> None:
    path = tmp_path / "my topology.yml"
    path.write_text(HEADER + textwrap.indent(MINIMAL, "  "))
    topology = discover(path.as_uri())
    assert topology.clusters[0].dataset("d").why == (
        f"HA by default: declared replicated in topology file {path} line 10",
    )


@pytest.mark.parametrize(
    ("url", "applies"),
    [
        ("file:///srv/topology.yaml", True),
        ("file:///srv/topology.YML", True),
        ("topology.yaml", True),
        ("/srv/shop.yml", True),
        ("file:///etc/cib.xml", False),
        ("/etc/cib.xml", False),
        ("pacemaker+file:///srv/topology.yaml", False),
        ("pacemaker://", False),
    ],
)
def test_applies_to(url: str, applies: bool) -> None:
    assert TopologyFileSource().applies_to(url) is applies


# -- defaults ---------------------------------------------------------------


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cluster,) = from_text(tmp_path, monkeypatch, MINIMAL).clusters
    assert cluster.manager is Manager.FILE
    assert all(n.online for n in cluster.nodes)
    ds = cluster.dataset("d")
    assert ds.ha
    assert ds.resource == "d"
    (resource,) = cluster.resources
    assert resource.id == "d"
    assert resource.agent == "manual"
    assert resource.parent is None
    assert resource.placement == {"n1": Role.PROMOTED, "n2": Role.UNPROMOTED}
    assert cluster.applications == ()
    assert cluster.dependencies == ()


HA_CASES = [
    ("replicated", "", True, {"n1": Role.STARTED}, "HA by default: declared replicated"),
    ("shared", "", True, {"n1": Role.STARTED}, "HA by default: declared shared"),
    ("local", "", False, {"n1": Role.STARTED}, "not HA by default: declared local"),
    ("replicated", "ha: false", False, {"n1": Role.STARTED}, "declared not HA"),
]


@pytest.mark.parametrize("case", HA_CASES, ids=[f"{c[0]}-{c[1]}" for c in HA_CASES])
def test_ha_and_placement_defaults(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, str, bool, dict[str, Role], str],
) -> None:
    replication, extra, ha, placement, why = case
    body = f"""\
    - name: c
      nodes: [n1]
      datasets:
        - id: d
          kind: k
          location: {{path: /x}}
          replication: {replication}
          primary: n1
          {extra}
    """
    (cluster,) = from_text(tmp_path, monkeypatch, body).clusters
    ds = cluster.dataset("d")
    assert ds.ha is ha
    assert cluster.resources[0].placement == placement
    assert ds.why == (f"{why} in topology file t.yaml line {12 if extra else 10}",)


def test_tiers_sorted_bottom_up_keeping_file_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = """\
    - name: c
      nodes: [n1]
      applications:
        - name: a
          tiers:
            - {name: web, resources: [nginx], depends_on: [app, cache]}
            - {name: app, resources: [api], depends_on: [db]}
            - {name: cache, resources: [redis]}
            - {name: db, resources: [pg]}
            - {name: batch, resources: [cron], depends_on: [db]}
    """
    (cluster,) = from_text(tmp_path, monkeypatch, body).clusters
    tiers = cluster.applications[0].tiers
    assert [t.name for t in tiers] == ["cache", "db", "app", "web", "batch"]
    assert [(d.source, d.target) for d in cluster.dependencies] == [
        ("api", "pg"),
        ("nginx", "api"),
        ("nginx", "redis"),
        ("cron", "pg"),
    ]
    assert [r.id for r in cluster.resources] == ["nginx", "api", "redis", "pg", "cron"]


def test_yaml_conveniences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = """\
    - name: c
      nodes: [n1, {name: n2, online: false}]
      datasets:
        - &pg
          id: data
          kind: postgresql
          location: {pgdata: /pg, port: 5432, ssl: true, password: hunter2}
          replication: replicated
          primary: n1
          standbys: [n2]
          resource: pg
        - <<: *pg
          id: wal
          location: {pg_wal: /wal}
    """
    (cluster,) = from_text(tmp_path, monkeypatch, body).clusters
    assert [n.online for n in cluster.nodes] == [True, False]
    assert cluster.dataset("data").location == {
        "pgdata": "/pg",
        "port": "5432",
        "ssl": "true",
        "password": "<redacted>",
    }
    assert cluster.dataset("wal").resource == "pg"
    assert [r.id for r in cluster.resources] == ["pg"]


# -- errors, each with its line ---------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "- name: c\n  nodes: [n1\n",
            "t.yaml:6: malformed YAML: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence at line 5)",
            id="malformed",
        ),
        pytest.param(
            "- name: c\n  name: d\n  nodes: [n1]\n",
            "t.yaml:5: clusters[0].name: duplicate key (first at line 4)",
            id="duplicate-key",
        ),
        pytest.param(
            "- nodes: [n1]\n",
            "t.yaml:4: clusters[0].name: field required",
            id="missing-field",
        ),
        pytest.param(
            "- name: c\n  nodes: [n1]\n  node: [n2]\n",
            "t.yaml:6: clusters[0].node: unknown field",
            id="unknown-field",
        ),
        pytest.param(
            "- name: c\n  manager: heartbeat\n  nodes: [n1]\n",
            "t.yaml:5: clusters[0].manager: input should be 'pacemaker', 'vcs', 'patroni', "
            "'kubernetes' or 'file'",
            id="bad-enum",
        ),
        pytest.param(
            "- name: c\n  nodes: []\n",
            "t.yaml:5: clusters[0].nodes: list should have at least 1 item after validation, not 0",
            id="no-nodes",
        ),
        pytest.param(
            "- name: c\n  nodes: [n1, {online: no}]\n  applications: 3\n",
            "t.yaml:5: clusters[0].nodes[1].name: field required (and 1 more error)",
            id="several-errors",
        ),
        pytest.param(
            "- name: c\n  nodes: [n1, 7]\n",
            "t.yaml:5: clusters[0].nodes[1]: expected a node name or a mapping with name "
            "and online",
            id="node-not-a-name",
        ),
        pytest.param(
            "- name: c\n  nodes: {n1: {}}\n",
            "t.yaml:5: clusters[0].nodes: expected a list",
            id="nodes-not-a-list",
        ),
        pytest.param(
            "- name: c\n  nodes: [n1, n1]\n",
            "t.yaml:5: clusters[0].nodes[1].name: duplicate node 'n1' (first at line 5)",
            id="duplicate-node",
        ),
        pytest.param(
            "- name: c\n  nodes: [n1]\n- name: c\n  nodes: [n1]\n",
            "t.yaml:6: clusters[1].name: duplicate cluster 'c' (first at line 4)",
            id="duplicate-cluster",
        ),
    ],
)
def test_shape_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    assert error_of(tmp_path, monkeypatch, body) == expected


def test_wrong_api_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("t.yaml").write_text("apiVersion: haprotect/v2\nkind: Topology\nclusters: []\n")
    with pytest.raises(ClusterConfigError, match=r"^t\.yaml:1: apiVersion: input should be"):
        discover("t.yaml")


def test_empty_and_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("empty.yaml").write_text("# nothing\n")
    with pytest.raises(ClusterConfigError, match=r"^empty\.yaml: empty document$"):
        discover("empty.yaml")
    with pytest.raises(ClusterConfigError, match=r"^missing\.yaml: cannot read: No such file"):
        discover("missing.yaml")


DATASET = """\
- name: c
  nodes: [n1, n2]
  datasets:
    - id: d
      kind: k
      location: {{path: /x}}
      {field}
"""


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            "replication: replicated\n      primary: n3",
            "t.yaml:11: clusters[0].datasets[0].primary: unknown node 'n3' (nodes: n1, n2)",
        ),
        (
            "replication: replicated\n      standbys: [n1, n9]",
            "t.yaml:11: clusters[0].datasets[0].standbys[1]: unknown node 'n9' (nodes: n1, n2)",
        ),
        (
            "replication: replicated\n      primary: n1\n      standbys: [n2, n1]",
            "t.yaml:12: clusters[0].datasets[0].standbys[1]: 'n1' is the primary, "
            "so it cannot be a standby",
        ),
        (
            "replication: local\n      ha: true",
            "t.yaml:11: clusters[0].datasets[0].ha: local data cannot be HA: "
            "set replication to shared or replicated",
        ),
        (
            "replication: local\n      standbys: [n2]",
            "t.yaml:11: clusters[0].datasets[0].standbys: local data has no standbys",
        ),
        (
            "replication: mirrored",
            "t.yaml:10: clusters[0].datasets[0].replication: input should be 'shared', "
            "'replicated' or 'local'",
        ),
    ],
)
def test_dataset_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, expected: str
) -> None:
    assert error_of(tmp_path, monkeypatch, DATASET.format(field=field)) == expected


def test_conflicting_derived_resource(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = """\
    - name: c
      nodes: [n1, n2]
      datasets:
        - {id: a, kind: k, location: {p: /a}, replication: shared, primary: n1, resource: r}
        - {id: b, kind: k, location: {p: /b}, replication: shared, primary: n2, resource: r}
    """
    assert error_of(tmp_path, monkeypatch, body).startswith(
        "t.yaml:8: clusters[0].datasets[1].resource: resource 'r' would run elsewhere "
        "than for the data set at line 7"
    )


def test_unknown_node_in_declared_placement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = """\
    - name: c
      nodes: [n1]
      resources:
        - id: r
          placement:
            n1: started
            n2: unpromoted
    """
    assert error_of(tmp_path, monkeypatch, body) == (
        "t.yaml:10: clusters[0].resources[0].placement.n2: unknown node 'n2' (nodes: n1)"
    )


APP = """\
- name: c
  nodes: [n1]
  datasets:
    - {{id: d, kind: k, location: {{p: /d}}, replication: local, primary: n1}}
  applications:
    - name: a
      tiers:
        - {{name: db, datasets: [d]}}
        {tier}
  dependencies:
    - {{from: d, to: d}}
"""


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (
            "- {name: app, resources: [api], depends_on: [dbs]}",
            "t.yaml:12: clusters[0].applications[0].tiers[1].depends_on[0]: "
            "unknown tier 'dbs' (tiers of a: app, db)",
        ),
        (
            "- {name: app, resources: [api], datasets: [e]}",
            "t.yaml:12: clusters[0].applications[0].tiers[1].datasets[0]: "
            "unknown data set 'e' (data sets: d)",
        ),
        (
            "- {name: app, resources: [api], datasets: [d]}",
            "t.yaml:12: clusters[0].applications[0].tiers[1].datasets[0]: "
            "data set 'd' is already in tier 'db'",
        ),
        (
            "- {name: app, resources: [d]}",
            "t.yaml:12: clusters[0].applications[0].tiers[1].resources[0]: "
            "resource 'd' is already in tier 'db'",
        ),
        (
            "- {name: db, resources: [api]}",
            "t.yaml:12: clusters[0].applications[0].tiers[1].name: duplicate tier 'db' "
            "(first at line 11)",
        ),
        (
            "- {name: app, depends_on: [db]}",
            "t.yaml:12: clusters[0].applications[0].tiers[1]: a tier needs resources or datasets",
        ),
    ],
)
def test_tier_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tier: str, expected: str
) -> None:
    assert error_of(tmp_path, monkeypatch, APP.format(tier=tier)) == expected


def test_unknown_resource_in_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = APP.format(tier="").replace("{from: d, to: d}", "{from: d, to: nope}")
    assert error_of(tmp_path, monkeypatch, body) == (
        "t.yaml:14: clusters[0].dependencies[0].to: unknown resource 'nope'"
    )


def test_dependency_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = """\
    - name: c
      nodes: [n1]
      applications:
        - name: a
          tiers:
            - {name: base, resources: [b]}
            - name: web
              resources: [w]
              depends_on: [base, app]
            - {name: app, resources: [x], depends_on: [web]}
    """
    assert error_of(tmp_path, monkeypatch, body) == (
        "t.yaml:12: clusters[0].applications[0].tiers[1].depends_on[1]: "
        "dependency cycle: web -> app -> web"
    )


def test_tier_depending_on_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = """\
    - name: c
      nodes: [n1]
      applications:
        - name: a
          tiers:
            - {name: web, resources: [w], depends_on: [web]}
    """
    assert error_of(tmp_path, monkeypatch, body) == (
        "t.yaml:9: clusters[0].applications[0].tiers[0].depends_on[0]: dependency cycle: web -> web"
    )


# -- layered storage: backing --------------------------------------------------


LAYERED = """\
- name: c
  nodes: [n1, n2]
  datasets:
    - {id: pg, kind: postgresql, location: {pgdata: /srv/pg}, replication: shared, backing: fs}
    - {id: fs, kind: filesystem, location: {directory: /srv}, replication: shared, backing: vg}
    - {id: vg, kind: lvm, location: {vgname: vg1}, replication: shared}
"""


def test_backing_names_the_data_set_beneath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (cluster,) = from_text(tmp_path, monkeypatch, LAYERED).clusters
    assert [(d.id, d.backing) for d in cluster.datasets] == [
        ("pg", "fs"),
        ("fs", "vg"),
        ("vg", None),
    ]
    topology = from_text(tmp_path, monkeypatch, LAYERED)
    assert topology_from_json(topology_to_json(topology)) == topology


def test_json_without_backing_still_loads(shop: Topology) -> None:
    data = topology_to_json(shop)
    for dataset in data["clusters"][0]["datasets"]:
        del dataset["backing"]
    assert topology_from_json(data) == shop


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("backing: vg}", "backing: nope}"),
            "t.yaml:8: clusters[0].datasets[1].backing: unknown data set 'nope' "
            "(data sets: pg, vg)",
        ),
        (
            ("backing: vg}", "backing: fs}"),
            "t.yaml:8: clusters[0].datasets[1].backing: data set 'fs' cannot lie on itself",
        ),
        (
            ("replication: shared}\n", "replication: shared, backing: pg}\n"),
            "t.yaml:7: clusters[0].datasets[0].backing: backing cycle: pg -> fs -> vg -> pg "
            "(each lies on the next)",
        ),
    ],
    ids=["unknown", "itself", "cycle"],
)
def test_backing_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str], expected: str
) -> None:
    body = LAYERED.replace(*change)
    assert error_of(tmp_path, monkeypatch, body) == expected


def test_backing_in_another_cluster_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = """\
    - name: a
      nodes: [n1]
      datasets:
        - {id: vg, kind: lvm, location: {vgname: vg1}, replication: shared}
    - name: b
      nodes: [n1]
      datasets:
        - {id: fs, kind: filesystem, location: {directory: /srv}, replication: shared,
            backing: vg}
    """
    assert error_of(tmp_path, monkeypatch, body) == (
        "t.yaml:12: clusters[1].datasets[0].backing: unknown data set 'vg' (data sets: none)"
    )
