"""Fixture CIBs pin the expected topology and policy as golden files.

Both placement paths (crm_mon and the pure-Python status reading) must give
the same topology, and the generated policy is pinned too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import ROOT
from tests.golden_files import check_golden, check_golden_text

from haprotect.model.topology import Topology
from haprotect.model.topology_json import topology_to_json
from haprotect.policy.generate import generate
from haprotect.policy.io import dump_policy, parse_policy
from haprotect.policy.rules_file import load_rules
from haprotect.sources import DiscoverOptions, discover

FIXTURES = {
    "shop": ROOT / "examples/shop-cluster.xml",
    "portal": ROOT / "tests/fixtures/pacemaker/portal-cluster.xml",
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def topology(path: Path, use_cli: bool) -> Topology:
    return discover(f"pacemaker+file://{path}", DiscoverOptions(use_cli=use_cli))


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_topology_matches_golden_on_both_placement_paths(name: str, crm_mon: str) -> None:
    python_path = topology(FIXTURES[name], use_cli=False)
    assert topology(FIXTURES[name], use_cli=True) == python_path
    check_golden(f"pacemaker-{name}.topology.json", topology_to_json(python_path))


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_policy_matches_golden_and_reloads(name: str) -> None:
    source = f"pacemaker+file://{FIXTURES[name].relative_to(ROOT)}"
    policy = generate(topology(FIXTURES[name], use_cli=False), load_rules(None), source=source,
                      now=NOW)  # fmt: skip
    text = dump_policy(policy)
    check_golden_text(f"pacemaker-{name}.policy.yaml", text)
    assert parse_policy(text, f"{name}.policy.yaml") == policy
