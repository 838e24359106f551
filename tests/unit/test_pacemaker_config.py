"""The configuration half of the Pacemaker source, on small hand-written CIBs."""

from __future__ import annotations

import pytest

from haprotect.errors import ClusterConfigError
from haprotect.model.topology import Node, Replication, Role
from haprotect.redact import REDACTED
from haprotect.sources.pacemaker.cib import CibConfig, read_config
from haprotect.sources.pacemaker.graph import build_graph
from haprotect.sources.pacemaker.source import build_cluster
from haprotect.sources.pacemaker.state import ClusterState, strip_instance
from haprotect.sources.pacemaker.xml import parse_xml


def cib(resources: str, constraints: str = "", extra: str = "") -> bytes:
    return f"""<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config/>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
    <resources>{resources}</resources>
    <constraints>{constraints}</constraints>
    {extra}
  </configuration>
  <status/>
</cib>""".encode()


def config_of(data: bytes) -> CibConfig:
    return read_config(parse_xml(data, "test.xml"), "test.xml")


def prim(rid: str, kind: str, params: str = "", provider: str = "heartbeat") -> str:
    attrs = f'<instance_attributes id="{rid}-ia">{params}</instance_attributes>' if params else ""
    return (
        f'<primitive id="{rid}" class="ocf" provider="{provider}" type="{kind}">{attrs}</primitive>'
    )


def nv(name: str, value: str, nid: str | None = None) -> str:
    return f'<nvpair id="{nid or name + "-" + value}" name="{name}" value="{value}"/>'


ONLINE = (Node("n1", True), Node("n2", True), Node("n3", True))


def test_templates_give_agent_and_defaults_that_primitives_override() -> None:
    config = config_of(
        cib(
            '<template id="fs-tpl" class="ocf" provider="heartbeat" type="Filesystem">'
            '<instance_attributes id="t-ia">'
            + nv("fstype", "xfs")
            + nv("directory", "/t")
            + "</instance_attributes></template>"
            '<primitive id="fs1" template="fs-tpl"><instance_attributes id="fs1-ia">'
            + nv("directory", "/data")
            + "</instance_attributes></primitive>"
        )
    )
    fs1 = config.primitives["fs1"]
    assert fs1.agent == "ocf:heartbeat:Filesystem"
    assert fs1.params == {"fstype": "xfs", "directory": "/data"}
    assert config.primitives_of("fs-tpl") == ["fs1"]


def test_attribute_sets_merge_by_score_and_mark_rules_conditional() -> None:
    config = config_of(
        cib(
            '<primitive id="db" class="ocf" provider="heartbeat" type="pgsql">'
            '<instance_attributes id="low" score="1">'
            + nv("pgdata", "/low", "a")
            + nv("pgport", "1", "b")
            + '</instance_attributes><instance_attributes id="high" score="10">'
            + nv("pgdata", "/high", "c")
            + "</instance_attributes>"
            '<instance_attributes id="ruled" score="100"><rule id="r" score="0">'
            '<expression id="e" attribute="#uname" operation="eq" value="n1"/></rule>'
            + nv("pgport", "5433", "d")
            + "</instance_attributes></primitive>"
        )
    )
    db = config.primitives["db"]
    assert db.params == {"pgdata": "/high", "pgport": "5433"}
    assert db.conditional == frozenset({"pgport"})


def test_id_refs_resolve_and_unknown_ones_name_the_line() -> None:
    config = config_of(
        cib(
            prim("a", "Filesystem", nv("directory", "/a", "shared-dir"))
            + '<primitive id="b" class="ocf" provider="heartbeat" type="Filesystem">'
            '<instance_attributes id="b-ia"><nvpair id-ref="shared-dir"/></instance_attributes>'
            "</primitive>"
        )
    )
    assert config.primitives["b"].params == {"directory": "/a"}
    with pytest.raises(ClusterConfigError, match=r"^test.xml:\d+: id-ref 'nope' names no element"):
        config_of(
            cib(
                '<primitive id="c" class="ocf" type="X"><instance_attributes id-ref="nope"/>'
                "</primitive>"
            )
        )


def test_secrets_never_reach_the_model() -> None:
    config = config_of(
        cib(
            prim(
                "db",
                "mysql",
                nv("test_passwd", "hunter2") + nv("ssl_key", "k") + nv("datadir", "/d"),
            )
        )
    )
    assert config.primitives["db"].params == {
        "test_passwd": REDACTED,
        "ssl_key": REDACTED,
        "datadir": "/d",
    }


def test_legacy_master_and_promotable_clone_are_both_promotable() -> None:
    config = config_of(
        cib(
            '<master id="ms1">'
            + prim("d1", "drbd", nv("drbd_resource", "r1"), "linbit")
            + "</master>"
            '<clone id="ms2"><meta_attributes id="m2">'
            + nv("promotable", "true")
            + "</meta_attributes>"
            + prim("d2", "drbd", nv("drbd_resource", "r2"), "linbit")
            + "</clone>"
        )
    )
    assert config.containers["ms1"].kind == "promotable"
    assert config.containers["ms2"].kind == "promotable"


def test_resource_sets_tags_and_groups_become_primitive_dependencies() -> None:
    config = config_of(
        cib(
            prim("a", "Dummy")
            + prim("b", "Dummy")
            + '<group id="g">'
            + prim("c", "Dummy")
            + prim("d", "Dummy")
            + "</group>",
            '<rsc_order id="o1"><resource_set id="s1"><resource_ref id="a"/></resource_set>'
            '<resource_set id="s2"><resource_ref id="t"/></resource_set></rsc_order>'
            '<rsc_colocation id="c1" score="INFINITY"><resource_set id="s3">'
            '<resource_ref id="g"/></resource_set><resource_set id="s4"><resource_ref id="a"/>'
            "</resource_set></rsc_colocation>"
            '<rsc_colocation id="apart" score="-INFINITY" rsc="a" with-rsc="b"/>'
            '<rsc_ticket id="tk" rsc="a" ticket="T1"/>',
            '<tags><tag id="t"><obj_ref id="b"/></tag></tags>',
        )
    )
    deps = {(d.source, d.target, d.kind) for d in build_graph(config).dependencies}
    assert ("d", "c", "group") in deps
    assert ("b", "a", "order") in deps  # later set needs the earlier one
    assert ("c", "a", "colocation") in deps  # earlier colocation set needs the later one
    assert ("d", "a", "colocation") in deps
    assert ("a", "ticket:T1", "ticket") in deps
    assert not any({s, t} == {"a", "b"} and k == "colocation" for s, t, k in deps)


def test_duplicate_ids_and_wrong_roots_are_one_line_errors() -> None:
    with pytest.raises(ClusterConfigError, match=r"^test.xml:\d+: resource id 'a' is used twice$"):
        config_of(cib(prim("a", "Dummy") + prim("a", "Dummy")))
    with pytest.raises(ClusterConfigError, match=r"not a CIB: root element is <crm_mon>"):
        config_of(b"<crm_mon/>")
    with pytest.raises(ClusterConfigError, match=r"^broken.xml:1: malformed XML"):
        parse_xml(b"<cib><configuration>", "broken.xml")


def test_xml_entities_are_not_expanded() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE cib [<!ENTITY x SYSTEM "file:///etc/passwd">]><cib>&x;</cib>'
    root = parse_xml(hostile, "evil.xml")
    assert "root:" not in (root.text or "")


def test_drbd_backed_filesystem_is_replicated_with_primary_and_standby() -> None:
    config = config_of(
        cib(
            '<master id="ms">'
            + prim("drbd0", "drbd", nv("drbd_resource", "r0"), "linbit")
            + "</master>"
            '<group id="g">'
            + prim("fs", "Filesystem", nv("device", "/dev/drbd0") + nv("directory", "/srv"))
            + prim("pg", "pgsql", nv("pgdata", "/srv/pg"))
            + "</group>",
            '<rsc_colocation id="c" score="INFINITY" rsc="g" with-rsc="ms"'
            ' with-rsc-role="Master"/>',
        )
    )
    state = ClusterState(
        ONLINE,
        {
            "drbd0": {"n1": Role.PROMOTED, "n2": Role.UNPROMOTED},
            "fs": {"n1": Role.STARTED},
            "pg": {"n1": Role.STARTED},
        },
    )
    cluster = build_cluster(config, state, "t")
    fs, pg = cluster.dataset("fs"), cluster.dataset("pg")
    assert (fs.replication, fs.primary, fs.standbys) == (Replication.REPLICATED, "n1", ("n2",))
    assert (pg.replication, pg.primary, pg.standbys) == (Replication.REPLICATED, "n1", ("n2",))
    assert any("pgdata /srv/pg is on Filesystem fs" in why for why in pg.why)
    assert (cluster.dataset("drbd0").backing, fs.backing, pg.backing) == (None, "drbd0", "fs")
    [app] = cluster.applications
    assert [t.name for t in app.tiers] == ["storage", "database"]
    assert app.tiers[1].depends_on == ("storage",)


def test_failover_filesystem_is_shared_and_bans_limit_standbys() -> None:
    config = config_of(
        cib(
            prim("fs", "Filesystem", nv("device", "/dev/sdb1") + nv("directory", "/data")),
            '<rsc_location id="ban" rsc="fs" node="n3" score="-INFINITY"/>',
        )
    )
    cluster = build_cluster(config, ClusterState(ONLINE, {"fs": {"n2": Role.STARTED}}), "t")
    fs = cluster.dataset("fs")
    assert (fs.ha, fs.replication, fs.primary, fs.standbys) == (
        True,
        Replication.SHARED,
        "n2",
        ("n1",),
    )
    assert fs.backing is None


def test_filesystem_and_lun_tied_to_drbd_lie_on_its_data_set() -> None:
    config = config_of(
        cib(
            '<master id="ms">'
            + prim("drbd0", "drbd", nv("drbd_resource", "r0"), "linbit")
            + "</master>"
            '<master id="ms1">'
            + prim("drbd1", "drbd", nv("drbd_resource", "r1"), "linbit")
            + "</master>"
            + prim("fs", "Filesystem", nv("device", "/dev/drbd0") + nv("directory", "/srv"))
            + prim("lun", "iSCSILogicalUnit", nv("path", "/dev/drbd/by-res/r1") + nv("lun", "1")),
            '<rsc_colocation id="c" score="INFINITY" rsc="fs" with-rsc="ms"'
            ' with-rsc-role="Master"/>',
        )
    )
    cluster = build_cluster(config, ClusterState(ONLINE, {}), "t")
    assert cluster.dataset("fs").backing == "drbd0"
    assert cluster.dataset("lun").backing == "drbd1"
    assert any("on DRBD resource r1 (drbd1" in why for why in cluster.dataset("lun").why)


def test_data_on_a_filesystem_on_a_volume_group_inherits_through_both() -> None:
    config = config_of(
        cib(
            '<group id="g">'
            + prim("vg", "LVM-activate", nv("vgname", "vg1") + nv("lvname", "lv1"))
            + prim("fs", "Filesystem", nv("device", "/dev/vg1/lv1") + nv("directory", "/srv"))
            + prim("db", "mysql", nv("datadir", "/srv/mysql"))
            + "</group>"
        )
    )
    placement = {r: {"n1": Role.STARTED} for r in ("vg", "fs", "db")}
    cluster = build_cluster(config, ClusterState(ONLINE, placement), "t")
    vg, fs, db = (cluster.dataset(d) for d in ("vg", "fs", "db"))
    assert (vg.backing, fs.backing, db.backing) == (None, "vg", "fs")
    assert (db.ha, db.replication, db.primary) == (True, Replication.SHARED, "n1")
    assert db.why[:2] == (
        "mysql db: datadir /srv/mysql is on Filesystem fs (/srv)",
        "Filesystem fs: its device is on volume group vg1 (vg)",
    )


def test_a_volume_group_that_needs_drbd_lies_on_it_and_so_does_what_is_on_it() -> None:
    config = config_of(
        cib(
            '<master id="ms">'
            + prim("drbd0", "drbd", nv("drbd_resource", "r0"), "linbit")
            + "</master>"
            '<group id="g">'
            + prim("vg", "LVM-activate", nv("vgname", "vg1") + nv("lvname", "lv1"))
            + prim("fs", "Filesystem", nv("device", "/dev/vg1/lv1") + nv("directory", "/srv"))
            + prim("db", "mysql", nv("datadir", "/srv/mysql"))
            + "</group>"
            + prim("vg2", "LVM-activate", nv("vgname", "vg2")),
            '<rsc_colocation id="c" score="INFINITY" rsc="g" with-rsc="ms"'
            ' with-rsc-role="Master"/>'
            '<rsc_order id="o" first="ms" first-action="promote" then="g" then-action="start"/>',
        )
    )
    placement = {r: {"n1": Role.STARTED} for r in ("vg", "fs", "db", "vg2")}
    placement["drbd0"] = {"n1": Role.PROMOTED, "n2": Role.UNPROMOTED}
    cluster = build_cluster(config, ClusterState(ONLINE, placement), "t")
    vg, fs, db = (cluster.dataset(d) for d in ("vg", "fs", "db"))
    assert (vg.backing, fs.backing, db.backing) == ("drbd0", "vg", "fs")
    for dataset in (vg, fs, db):
        assert (dataset.replication, dataset.primary, dataset.standbys) == (
            Replication.REPLICATED,
            "n1",
            ("n2",),
        )
    assert vg.why[0] == "LVM-activate vg is on DRBD resource r0 (drbd0, a promotable clone (ms))"
    # A volume group with no tie to DRBD is still a failover volume group.
    vg2 = cluster.dataset("vg2")
    assert (vg2.replication, vg2.backing) == (Replication.SHARED, None)


def test_database_on_no_cluster_storage_is_local_and_not_ha() -> None:
    config = config_of(cib(prim("db", "mysql", nv("datadir", "/var/lib/mysql"))))
    cluster = build_cluster(config, ClusterState(ONLINE, {"db": {"n1": Role.STARTED}}), "t")
    db = cluster.dataset("db")
    assert (db.ha, db.replication, db.backing) == (False, Replication.LOCAL, None)


def test_bundle_storage_mappings_become_data_sets_but_sockets_do_not() -> None:
    config = config_of(
        cib(
            '<bundle id="web"><docker image="x" replicas="2"/><storage>'
            '<storage-mapping id="root" source-dir="/srv/html" target-dir="/var/www" options="rw"/>'
            '<storage-mapping id="ro" source-dir="/etc/x" target-dir="/etc/x" options="ro"/>'
            '<storage-mapping id="log" source-dir="/dev/log" target-dir="/dev/log" options="rw"/>'
            "</storage>" + prim("httpd", "apache") + "</bundle>"
        )
    )
    cluster = build_cluster(config, ClusterState(ONLINE, {}), "t")
    assert [d.id for d in cluster.datasets] == ["web/root"]
    assert cluster.datasets[0].location == {"source-dir": "/srv/html", "target-dir": "/var/www"}
    assert cluster.datasets[0].backing is None


def test_bundle_storage_on_a_filesystem_lies_on_it_not_on_what_is_below() -> None:
    config = config_of(
        cib(
            '<master id="ms">'
            + prim("drbd0", "drbd", nv("drbd_resource", "r0"), "linbit")
            + "</master>"
            + prim(
                "fs", "Filesystem", nv("device", "/dev/drbd/by-res/r0") + nv("directory", "/srv")
            )
            + '<bundle id="web"><docker image="x" replicas="1"/><storage>'
            '<storage-mapping id="root" source-dir="/srv/html" target-dir="/var/www" options="rw"/>'
            "</storage>" + prim("httpd", "apache") + "</bundle>"
        )
    )
    cluster = build_cluster(config, ClusterState(ONLINE, {}), "t")
    root = cluster.dataset("web/root")
    assert (root.kind, root.backing, root.replication) == (
        "bundle-storage",
        "fs",
        Replication.REPLICATED,
    )
    assert cluster.dataset("fs").backing == "drbd0"


def test_tags_name_applications() -> None:
    config = config_of(
        cib(
            prim("fs", "Filesystem", nv("device", "/dev/sdb1") + nv("directory", "/data"))
            + prim("web", "apache"),
            '<rsc_order id="o" first="fs" then="web"/>',
            '<tags><tag id="shop"><obj_ref id="web"/></tag></tags>',
        )
    )
    cluster = build_cluster(config, ClusterState(ONLINE, {}), "t")
    [app] = cluster.applications
    assert app.name == "shop"
    assert [(t.name, t.resources) for t in app.tiers] == [
        ("storage", ("fs",)),
        ("frontend", ("web",)),
    ]


def test_clone_instance_suffixes_are_stripped() -> None:
    assert strip_instance("drbd:12") == "drbd"
    assert strip_instance("ip-10.0.0.1") == "ip-10.0.0.1"
    assert strip_instance("a:b") == "a:b"
