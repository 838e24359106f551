"""The lab's CIB writer: what it writes, and what the Pacemaker source reads back."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from tests.conftest import require_component

from haprotect.lab.cib import CibNode, CibSpec, render_cib, tools_feature_set
from haprotect.model.topology import Cluster, Replication
from haprotect.sources.pacemaker.cib import read_config
from haprotect.sources.pacemaker.source import build_cluster
from haprotect.sources.pacemaker.status import state_from_status
from haprotect.sources.pacemaker.xml import parse_xml

SPEC = CibSpec(
    nodes=(
        CibNode("node1", "1", "/tmp/lab/node1/pgdata", 5433),
        CibNode("node2", "2", "/tmp/lab/node2/pgdata", 5434),
    ),
    primary="node1",
    bindir="/usr/lib/postgresql/15/bin",
    socket_dir="/tmp/lab/run",
    system_user="postgres",
    shared_dir="/tmp/lab/shared",
    python="/usr/bin/python3",
    lab_dir="/tmp/lab",
    run_dir="/tmp/lab/run",
    log_dir="/tmp/lab/logs",
    epoch=7,
    last_change=1_700_000_000,
)


def cluster_of(spec: CibSpec) -> Cluster:
    cib = parse_xml(render_cib(spec), "lab cib")
    return build_cluster(read_config(cib, "lab cib"), state_from_status(cib), "lab")


def test_the_same_spec_gives_the_same_bytes() -> None:
    assert render_cib(SPEC) == render_cib(SPEC)
    assert b'epoch="7"' in render_cib(SPEC)


def test_promoted_node_is_the_primary_of_the_postgresql_data_set() -> None:
    cluster = cluster_of(SPEC)
    pg = next(d for d in cluster.datasets if d.id == "pgsql_shop")
    assert pg.kind == "postgresql"
    assert pg.replication is Replication.REPLICATED
    assert (pg.primary, pg.standbys) == ("node1", ("node2",))
    assert any("differ by rule" in why for why in pg.why)


def test_after_failover_the_roles_follow() -> None:
    cluster = cluster_of(replace(SPEC, primary="node2"))
    pg = next(d for d in cluster.datasets if d.id == "pgsql_shop")
    fs = next(d for d in cluster.datasets if d.id == "fs_shared")
    assert (pg.primary, pg.standbys) == ("node2", ("node1",))
    assert fs.primary == "node2"
    assert fs.location["directory"] == "/tmp/lab/shared"


def test_one_application_with_four_tiers() -> None:
    cluster = cluster_of(SPEC)
    assert [a.name for a in cluster.applications] == ["shop"]
    tiers = {t.name: t for t in cluster.applications[0].tiers}
    assert list(tiers) == ["storage", "database", "application", "frontend"]
    assert tiers["storage"].resources == ("fs_shared",)
    assert tiers["database"].resources == ("pgsql_shop",)
    assert tiers["application"].resources == ("orders_app",)
    assert tiers["frontend"].resources == ("web_front",)
    assert "database" in tiers["application"].depends_on


def test_each_node_has_its_own_rule_guarded_pgdata_and_port() -> None:
    xml = render_cib(SPEC).decode()
    for node in SPEC.nodes:
        assert f'attribute="#uname" operation="eq" value="{node.name}"' in xml
        assert f'name="pgdata" value="{node.pgdata}"' in xml
        assert f'name="pgport" value="{node.pgport}"' in xml


def test_a_stopped_lab_has_no_primary() -> None:
    cluster = cluster_of(replace(SPEC, running=False))
    pg = next(d for d in cluster.datasets if d.id == "pgsql_shop")
    assert pg.primary is None
    assert all(not r.placement for r in cluster.resources)


def test_primary_must_be_a_node() -> None:
    with pytest.raises(ValueError, match="node3"):
        render_cib(replace(SPEC, primary="node3"))


def test_the_installed_tools_can_modify_what_the_lab_writes(tmp_path: Path) -> None:
    tool = shutil.which("crm_resource")
    require_component("crm_resource", tool is not None, "install pacemaker-cli-utils")
    assert tool is not None
    cib = tmp_path / "cib.xml"
    cib.write_bytes(render_cib(replace(SPEC, feature_set=tools_feature_set())))
    argv = [tool, "--resource", "web_front", "--meta", "--set-parameter", "is-managed"]
    done = subprocess.run(
        [*argv, "--parameter-value", "false"],
        env={**os.environ, "CIB_file": str(cib)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b'name="is-managed" value="false"' in cib.read_bytes()


def test_with_haproxy_the_front_end_runs_an_haproxy_resource_with_the_labs_conffile() -> None:
    spec = replace(SPEC, haproxy=("/usr/sbin/haproxy", "/tmp/lab/haproxy.cfg"))
    cluster = cluster_of(spec)
    tiers = {t.name: t for t in cluster.applications[0].tiers}
    assert tiers["frontend"].resources == ("web_front", "web_lb")
    lb = next(r for r in cluster.resources if r.id == "web_lb")
    assert lb.agent == "ocf:heartbeat:haproxy"
    assert lb.settings == {"conffile": "/tmp/lab/haproxy.cfg"}
    assert lb.placement  # it runs where the group runs
    assert all(r.id != "web_lb" for r in cluster_of(SPEC).resources)
