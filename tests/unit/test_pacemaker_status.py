"""Placement: the CIB status reader and the crm_mon reader, on hand-written input.

Each status test pins one rule of Pacemaker's unpacking; crm_mon 2.1.5 reads
every CIB here the same way but for newer Pacemaker's join timestamps. The
crm_mon tests pin how its output and failures are read; tests/integration
checks that the two readers agree on real CIBs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from lxml import etree

from haprotect.errors import ClusterConfigError, ComponentError
from haprotect.model.topology import Node, Role
from haprotect.sources.pacemaker.crm_mon import display_role, run_crm_mon, state_from_crm_mon
from haprotect.sources.pacemaker.status import state_from_status
from haprotect.sources.pacemaker.xml import parse_xml

UUID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
P, U, S = Role.PROMOTED, Role.UNPROMOTED, Role.STARTED
ONLINE = 'in_ccm="true" crmd="online" join="member" expected="member"'
CRASHED = 'in_ccm="false" crmd="offline" join="down" expected="member"'
STOPPED_CLEANLY = 'in_ccm="false" crmd="offline" join="down" expected="down"'


def op(rid: str, task: str, call: int, rc: int = 0, **kw: int | str) -> str:
    """One ``lrm_rsc_op``. Keywords: ``interval``, ``target`` (the expected rc,
    by default ``rc``), ``status``, ``changed``; others become attributes."""
    interval, status, target = kw.pop("interval", 0), kw.pop("status", 0), kw.pop("target", rc)
    changed = kw.pop("changed", 1000 + call)
    key = f"{rid}_{task}_{interval}"
    extra = "".join(f' {k}="{v}"' for k, v in kw.items())
    return (
        f'<lrm_rsc_op id="{key}-{call}" operation_key="{key}" operation="{task}"'
        f' transition-key="{call}:1:{target}:{UUID}"'
        f' transition-magic="{status}:{rc};{call}:1:{target}:{UUID}"'
        f' call-id="{call}" rc-code="{rc}" op-status="{status}" interval="{interval}"'
        f' last-rc-change="{changed}"{extra}/>'
    )


def history(rid: str, *ops: str) -> str:
    return f'<lrm_resource id="{rid}" type="Dummy">{"".join(ops)}</lrm_resource>'


def node(name: str, *entries: str, state: str = ONLINE, attrs: str = "") -> str:
    pairs = f'<instance_attributes id="{name}-ta">{attrs}</instance_attributes>'
    transient = f'<transient_attributes id="{name}">{pairs}</transient_attributes>'
    lrm = f'<lrm id="{name}"><lrm_resources>{"".join(entries)}</lrm_resources></lrm>'
    return f'<node_state id="{name}" uname="{name}" {state}>{transient}{lrm}</node_state>'


def dummy(rid: str, meta: str = "", ops: str = "") -> str:
    meta_xml = f'<meta_attributes id="{rid}-meta">{meta}</meta_attributes>' if meta else ""
    ops_xml = f"<operations>{ops}</operations>" if ops else ""
    head = f'<primitive id="{rid}" class="ocf" provider="pacemaker" type="Dummy">'
    return f"{head}{meta_xml}{ops_xml}</primitive>"


def nv(name: str, value: str) -> str:
    return f'<nvpair id="nv-{name}-{value}" name="{name}" value="{value}"/>'


def promotable(rid: str) -> str:
    meta = f'<meta_attributes id="{rid}-clone-meta">{nv("promotable", "true")}</meta_attributes>'
    return f'<clone id="{rid}-clone">{meta}{dummy(rid)}</clone>'


def cib(resources: str, *states: str, stonith: bool = False, props: str = "") -> etree._Element:
    text = f"""<cib validate-with="pacemaker-3.9" crm_feature_set="3.17.4" have-quorum="1"
     epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config><cluster_property_set id="cib-bootstrap-options">
      {nv("stonith-enabled", str(stonith).lower())}{props}
    </cluster_property_set></crm_config>
    <nodes><node id="n1" uname="n1"/><node id="n2" uname="n2"/><node id="n3" uname="n3"/></nodes>
    <resources>{resources}</resources>
    <constraints/>
  </configuration>
  <status>{"".join(states)}</status>
</cib>"""
    return parse_xml(text.encode(), "test.xml")


def placement(root: etree._Element, now: float | None = None) -> dict[str, dict[str, Role]]:
    return state_from_status(root, now=now).placement


def test_promoted_and_unpromoted_instances_of_a_promotable_clone() -> None:
    root = cib(
        promotable("db"),
        node("n1", history("db", op("db", "start", 5), op("db", "promote", 6))),
        node("n2", history("db", op("db", "start", 5), op("db", "monitor", 6, interval=10000))),
        node("n3", history("db", op("db", "monitor", 2, 7))),
    )
    assert placement(root) == {"db": {"n1": P, "n2": U}}


def test_legacy_master_element_is_promotable() -> None:
    root = cib(
        f'<master id="ms-db">{dummy("db")}</master>',
        node("n1", history("db", op("db", "monitor", 3, 8))),
        node("n2", history("db", op("db", "monitor", 3, 0, target=7))),
    )
    assert placement(root) == {"db": {"n1": P, "n2": U}}


def test_failed_promoted_monitor_still_means_promoted() -> None:
    root = cib(
        promotable("db"),
        node("n1", history("db", op("db", "promote", 4), op("db", "monitor", 5, 9, target=8))),
    )
    assert placement(root) == {"db": {"n1": P}}


def test_demoted_instance_is_unpromoted() -> None:
    root = cib(
        promotable("db"),
        node("n1", history("db", op("db", "promote", 4), op("db", "demote", 5))),
    )
    assert placement(root) == {"db": {"n1": U}}


def test_a_failed_start_leaves_the_resource_active_there() -> None:
    root = cib(dummy("web"), node("n1", history("web", op("web", "start", 3, 1, target=0))))
    assert placement(root) == {"web": {"n1": S}}


def test_a_stop_after_a_start_means_not_running() -> None:
    root = cib(
        dummy("web"), node("n1", history("web", op("web", "start", 3), op("web", "stop", 4)))
    )
    assert placement(root) == {}


def test_history_is_ordered_by_call_id_not_by_document_order() -> None:
    restarted = history("web", op("web", "start", 9), op("web", "stop", 4), op("web", "start", 2))
    assert placement(cib(dummy("web"), node("n1", restarted))) == {"web": {"n1": S}}
    stopped = history("web", op("web", "stop", 9), op("web", "start", 4))
    assert placement(cib(dummy("web"), node("n1", stopped))) == {}


def test_a_failed_stop_keeps_it_active_unless_on_fail_ignore() -> None:
    failed_stop = history("web", op("web", "start", 3), op("web", "stop", 4, 1, target=0))
    assert placement(cib(dummy("web"), node("n1", failed_stop))) == {"web": {"n1": S}}
    ignore = '<op id="web-stop" name="stop" interval="0" on-fail="ignore"/>'
    assert placement(cib(dummy("web", ops=ignore), node("n1", failed_stop))) == {}


def test_probes_find_resources_running_or_not() -> None:
    root = cib(
        dummy("web"),
        node("n1", history("web", op("web", "monitor", 2, 0, target=7))),
        node("n2", history("web", op("web", "monitor", 2, 7))),
        node("n3", history("web", op("web", "monitor", 2, 5, target=7))),  # not installed
    )
    assert placement(root) == {"web": {"n1": S}}


def test_an_unexpected_not_running_is_a_failure_that_still_counts() -> None:
    monitor = op("web", "monitor", 4, 7, target=0, interval=10000)
    root = cib(dummy("web"), node("n1", history("web", op("web", "start", 3), monitor)))
    assert placement(root) == {"web": {"n1": S}}
    unmanaged = cib(
        dummy("web"),
        node("n1", history("web", op("web", "start", 3), monitor)),
        props=nv("maintenance-mode", "true"),
    )
    assert placement(unmanaged) == {}


def test_pending_actions_map_to_the_role_held_now() -> None:
    root = cib(
        dummy("web") + promotable("db"),
        node(
            "n1",
            history("web", op("web", "start", -1, 193, status=-1)),
            history("db", op("db", "start", 3), op("db", "promote", -1, 193, status=-1)),
        ),
        node("n2", history("db", op("db", "start", -1, 193, status=-1))),
    )
    assert placement(root) == {"web": {"n1": S}, "db": {"n1": P, "n2": U}}
    for text, in_promotable, role in [
        ("Starting", False, S),
        ("Starting", True, U),
        ("Stopping", True, U),
        ("Migrating", False, S),
        ("Promoting", True, P),
        ("Demoting", True, P),
        ("Master", True, P),
        ("Slave", True, U),
        ("Stopped", False, None),
    ]:
        assert display_role(text, in_promotable) == role, text


def test_expired_probe_failures_are_forgotten() -> None:
    meta = nv("failure-timeout", "60s")
    failed_probe = history("web", op("web", "monitor", 2, 1, target=7, changed=1000))
    root = cib(dummy("web", meta), node("n1", failed_probe))
    assert placement(root, now=1030) == {"web": {"n1": S}}
    assert placement(root, now=5000) == {}


def test_offline_nodes_run_nothing_without_fencing() -> None:
    started = history("web", op("web", "start", 3))
    root = cib(dummy("web"), node("n1", started, state=CRASHED))
    assert placement(root) == {}
    assert state_from_status(root).nodes[0] == Node("n1", online=False)


def test_a_crashed_node_keeps_its_resources_until_fenced() -> None:
    started = history("web", op("web", "start", 3))
    assert placement(cib(dummy("web"), node("n1", started, state=CRASHED), stonith=True)) == {
        "web": {"n1": S}
    }
    stopped = history("web", op("web", "start", 3), op("web", "stop", 4))
    cleanly = cib(dummy("web"), node("n1", stopped, state=STOPPED_CLEANLY), stonith=True)
    assert placement(cleanly) == {}


def test_node_online_state_old_and_new_forms() -> None:
    # Pacemaker 2.1.7 and later record when a node joined instead of "true"
    # and "online"; crm_mon 2.1.5 would call such a node offline.
    root = cib(
        "",
        node("n1"),
        node("n2", state='in_ccm="1718744075" crmd="1718744075" join="member" expected="member"'),
        node("n3", state='in_ccm="0" crmd="0" join="down" expected="down"'),
    )
    assert state_from_status(root).nodes == (Node("n1", True), Node("n2", True), Node("n3", False))
    shutting_down = cib("", node("n1", state=CRASHED, attrs=nv("shutdown", "1700000000")))
    assert state_from_status(shutting_down).nodes[0].online is False


def test_clone_instance_suffixes_are_stripped() -> None:
    root = cib(
        f'<clone id="ping-clone">{dummy("ping")}</clone>',
        node("n1", history("ping:0", op("ping:0", "start", 3))),
        node("n2", history("ping:1", op("ping:1", "start", 3))),
        node("n3", history("ping", op("ping", "start", 3))),
    )
    assert placement(root) == {"ping": {"n1": S, "n2": S, "n3": S}}


def test_orphaned_history_still_counts_where_it_runs() -> None:
    root = cib("", node("n2", history("gone", op("gone", "start", 3))))
    assert placement(root) == {"gone": {"n2": S}}


def test_resources_on_a_remote_node_need_its_connection_started() -> None:
    remote = '<primitive id="r1" class="ocf" provider="pacemaker" type="remote"/>'
    on_remote = node("r1", history("web", op("web", "start", 3)))
    root = cib(remote + dummy("web"), node("n1", history("r1", op("r1", "start", 2))), on_remote)
    state = state_from_status(root)
    assert state.placement == {"r1": {"n1": S}, "web": {"r1": S}}
    assert Node("r1", online=True) in state.nodes
    down = cib(remote + dummy("web"), node("n1", history("r1", op("r1", "stop", 2))), on_remote)
    assert placement(down) == {}


def migration(task: str, call: int) -> str:
    return op("vm", task, call, migrate_source="n1", migrate_target="n2")


def test_a_live_migration_leaves_the_resource_on_the_target() -> None:
    root = cib(
        dummy("vm", nv("allow-migrate", "true")),
        node(
            "n1",
            history("vm", op("vm", "start", 2), migration("migrate_to", 3), op("vm", "stop", 4)),
        ),
        node("n2", history("vm", migration("migrate_from", 7))),
    )
    assert placement(root) == {"vm": {"n2": S}}
    partial = cib(
        dummy("vm", nv("allow-migrate", "true")),
        node("n1", history("vm", op("vm", "start", 2), migration("migrate_to", 3))),
        node("n2", history("vm", op("vm", "monitor", 1, 7))),
    )
    assert placement(partial) == {"vm": {"n1": S, "n2": S}}


def test_an_empty_or_missing_status_places_nothing() -> None:
    root = parse_xml(b"<cib><configuration><nodes/><resources/></configuration></cib>", "t")
    assert state_from_status(root).placement == {}


CRM_MON = b"""<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">
  <nodes>
    <node name="n1" id="1" online="true" type="member"/>
    <node name="n2" id="2" online="false" type="member"/>
    <node name="web-bundle-0" id="web-bundle-0" online="true" type="remote"/>
  </nodes>
  <resources>
    <resource id="ip" role="Started" active="true"><node name="n1" id="1"/></resource>
    <resource id="starting" role="Starting" active="true"><node name="n1" id="1"/></resource>
    <resource id="off" role="Started" active="false"><node name="n2" id="2"/></resource>
    <resource id="idle" role="Stopped" active="false"/>
    <clone id="db-clone" multi_state="true">
      <resource id="db" role="Promoted" active="true"><node name="n1" id="1"/></resource>
      <resource id="db" role="Stopping" active="true"><node name="n2" id="2"/></resource>
    </clone>
    <clone id="u-clone" multi_state="false" unique="true">
      <group id="g:0">
        <resource id="u:0" role="Started" active="true"><node name="n2"/></resource>
      </group>
    </clone>
    <bundle id="web-bundle">
      <replica id="0">
        <resource id="web" role="Started" active="true"><node name="web-bundle-0"/></resource>
      </replica>
    </bundle>
  </resources>
  <status code="0" message="OK"/>
</pacemaker-result>"""

LEGACY = b"""<crm_mon version="2.0.0"><nodes><node name="node01" online="true"/></nodes>
  <resources><clone id="msl" multi_state="true">
    <resource id="hana" role="Master" active="true"><node name="node01"/></resource>
    <resource id="hana" role="Slave" pending="Monitoring"><node name="node02"/></resource>
  </clone></resources></crm_mon>"""


def test_crm_mon_output_is_read_into_nodes_and_placement() -> None:
    state = state_from_crm_mon(parse_xml(CRM_MON, "crm_mon"))
    assert state.nodes == (Node("n1", True), Node("n2", False), Node("web-bundle-0", True))
    assert state.placement == {
        "ip": {"n1": S},
        "starting": {"n1": S},
        "db": {"n1": P, "n2": U},
        "u": {"n2": S},
        "web": {"web-bundle-0": S},
    }


def test_legacy_crm_mon_output_is_read_too() -> None:
    state = state_from_crm_mon(parse_xml(LEGACY, "crm_mon"))
    assert state.placement == {"hana": {"node01": P, "node02": U}}


def test_crm_mon_errors_and_foreign_documents_are_rejected() -> None:
    failed = b"""<pacemaker-result><status code="0" message="OK"><errors>
      <error>Could not connect to the CIB: Update does not conform to the configured schema</error>
      </errors></status></pacemaker-result>"""
    with pytest.raises(ComponentError, match=r"does not conform to the configured schema$"):
        state_from_crm_mon(parse_xml(failed, "crm_mon"))
    with pytest.raises(ClusterConfigError, match="root element is <cib>"):
        state_from_crm_mon(parse_xml(b"<cib/>", "crm_mon"))


def fake_crm_mon(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put a stand-in ``crm_mon`` first on PATH."""
    exe = tmp_path / "crm_mon"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


def test_run_crm_mon_passes_the_cib_file_and_returns_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_crm_mon(tmp_path, 'echo "<pacemaker-result><status/>$CIB_file $*"', monkeypatch)
    out = run_crm_mon(Path("/srv/cib.xml"), timeout=10)
    assert out.decode().strip().endswith("/srv/cib.xml --one-shot --inactive --output-as=xml")


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "echo 'INFO: upgrading schema' >&2; echo 'crm_mon: invalid CIB' >&2; exit 65",
            r"^crm_mon exited with status 65 on /srv/cib.xml: crm_mon: invalid CIB$",
        ),
        ("kill -SEGV $$", r"^crm_mon was killed by SIGSEGV on /srv/cib.xml$"),
        ("exec sleep 5", r"^crm_mon timed out after 0.5s on /srv/cib.xml$"),
        ("echo '<pacemaker-result'", r"^crm_mon printed malformed XML on /srv/cib.xml$"),
    ],
    ids=["exit-status", "signal", "timeout", "garbage"],
)
def test_run_crm_mon_failures_are_one_line_errors(
    script: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_crm_mon(tmp_path, script, monkeypatch)
    with pytest.raises(ComponentError, match=message) as info:
        run_crm_mon(Path("/srv/cib.xml"), timeout=0.5)
    assert "\n" not in info.value.message


def test_run_crm_mon_without_crm_mon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ComponentError, match="crm_mon is not installed") as info:
        run_crm_mon(None, timeout=1)
    assert info.value.hint
