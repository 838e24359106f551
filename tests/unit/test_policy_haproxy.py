"""A tier running HAProxy (ocf:heartbeat:haproxy) is quiesced by the haproxy quiescer."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import FIXTURES

from haprotect.model.policy import Decision, Policy
from haprotect.model.topology_json import topology_from_json, topology_to_json
from haprotect.policy import default_rules, generate, topology_fingerprint
from haprotect.policy.io import dump_policy, parse_policy
from haprotect.sources import DiscoverOptions, discover
from haprotect.sources.pacemaker.agents import settings_of
from haprotect.testing.builders import topology, web_cluster

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CIB = FIXTURES / "pacemaker" / "haproxy-cluster.xml"


def policy_of_the_fixture() -> Policy:
    source = f"pacemaker+file://{CIB}"
    found = discover(source, DiscoverOptions(use_cli=False))
    return generate(found, default_rules(), source=source, now=NOW)


def test_the_tier_running_haproxy_gets_the_haproxy_quiescer_with_its_conffile() -> None:
    policy = policy_of_the_fixture()
    (group,) = policy.groups
    tiers = {t.name: t for t in group.tiers}
    assert "lb_web" in tiers["frontend"].resources
    (quiescer,) = tiers["frontend"].quiesce
    assert quiescer.kind == "haproxy"
    assert dict(quiescer.options) == {"conffile": "/etc/haproxy/web.cfg"}
    assert tiers["storage"].quiesce == ()
    why = [r for r in group.reasons if r.decision is Decision.QUIESCE]
    assert [r.source for r in why] == ["resource lb_web"]
    assert "ocf:heartbeat:haproxy resource lb_web" in why[0].because
    assert "conffile /etc/haproxy/web.cfg" in why[0].because


def test_the_quiescer_survives_the_policy_file() -> None:
    policy = policy_of_the_fixture()
    again = parse_policy(dump_policy(policy), "policy.yaml")
    tier = next(t for t in again.groups[0].tiers if t.name == "frontend")
    assert [(q.kind, dict(q.options)) for q in tier.quiesce] == [
        ("haproxy", {"conffile": "/etc/haproxy/web.cfg"})
    ]


def test_a_resource_without_conffile_gets_the_agents_default() -> None:
    assert settings_of("haproxy", {"binpath": "/usr/sbin/haproxy"}) == {
        "conffile": "/etc/haproxy/haproxy.cfg"
    }
    assert settings_of("haproxy", {"conffile": "/srv/lb.cfg"}) == {"conffile": "/srv/lb.cfg"}
    assert settings_of("nginx", {"configfile": "/etc/nginx.conf"}) == {}


def test_settings_are_written_only_where_an_agent_has_some() -> None:
    """So the topologies (and fingerprints) of clusters without HAProxy stay as they were."""
    plain = topology_to_json(topology(web_cluster()))
    assert all("settings" not in r for c in plain["clusters"] for r in c["resources"])
    source = f"pacemaker+file://{CIB}"
    found = discover(source, DiscoverOptions(use_cli=False))
    written = topology_to_json(found)
    lb = next(r for r in written["clusters"][0]["resources"] if r["id"] == "lb_web")
    assert lb["settings"] == {"conffile": "/etc/haproxy/web.cfg"}
    assert topology_from_json(written) == found
    assert topology_fingerprint(topology_from_json(written)) == topology_fingerprint(found)
