"""Quiescing in the engine: specs from the policy, the cut while held, fail and continue."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from haprotect.engine import ListReporter, list_sets, run_backup, run_restore
from haprotect.engine.backup import RunOptions
from haprotect.engine.events import Issue
from haprotect.engine.quiescing import copy_order, quiesce_specs
from haprotect.errors import InputError, PolicyError, QuiesceError
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.plan import Plan
from haprotect.model.policy import Policy, TierQuiescer
from haprotect.model.result import ItemStatus, Result, Status
from haprotect.model.snapshot import JSONValue
from haprotect.model.topology import Topology
from haprotect.movers import get_mover, mover_name_for
from haprotect.movers.pgcheck import Endpoint
from haprotect.movers.pgcut import PostgresCut
from haprotect.movers.pgreplay import ReplayPause
from haprotect.plan import build, parse_inventory, plan_restore
from haprotect.policy import default_rules, generate
from haprotect.policy.diff import diff_policies
from haprotect.policy.io import dump_policy, parse_policy
from haprotect.quiesce import HoldReport, OnError, QuiesceSpec, ResumeReport
from haprotect.repo import KdfParams, Repository
from haprotect.storage.memory import MemoryStore
from haprotect.testing.builders import topology, web_cluster
from haprotect.testing.plans import plan_with_movers, site

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INVENTORY = Inventory(
    (NodeAccess("node1", "10.0.0.11", True), NodeAccess("node2", "10.0.0.12", True)),
    this_host="backup-host",
)


def with_quiesce(policy: Policy, **tiers: tuple[TierQuiescer, ...]) -> Policy:
    groups = tuple(
        replace(g, tiers=tuple(replace(t, quiesce=tiers.get(t.name, t.quiesce)) for t in g.tiers))
        for g in policy.groups
    )
    return replace(policy, groups=groups)


def plan_of(topo: Topology, **tiers: tuple[TierQuiescer, ...]) -> Plan:
    policy = with_quiesce(
        generate(topo, default_rules(), source="file:///t.yaml", now=NOW), **tiers
    )
    return plan_with_movers(policy, topo, INVENTORY, NOW)


class Recorder:
    """A quiescer that records its calls; it can fail its hold or act at resume."""

    def __init__(
        self, name: str, calls: list[str], fail: bool = False, at_resume: Callable[[], None] = str
    ) -> None:
        self.name = name
        self.calls = calls
        self.fail = fail
        self.at_resume = at_resume

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        return None

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        self.calls.append(f"hold {spec.tier}")
        if self.fail:
            raise QuiesceError("the pre-hook exited with status 1")
        return HoldReport(time.time(), {"queued": "0"})

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        self.calls.append(f"resume {spec.tier}")
        self.at_resume()
        return ResumeReport(time.time(), {})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, rel, content in (("data", "a.txt", b"alpha\n"), ("static", "i.html", b"<h1>\n")):
        path = tmp_path / "src" / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tmp_path / "src"


@pytest.fixture
def repo() -> Repository:
    return Repository.init(MemoryStore("memory://q/"), "pw", kdf=KdfParams(n=1 << 10))


def run(
    plan: Plan, repo: Repository, tmp: Path, *quiescers: Recorder
) -> tuple[Result, ListReporter]:
    reporter = ListReporter()
    result = run_backup(
        plan,
        repo,
        reporter,
        RunOptions(staging=tmp / "staging"),
        quiescers={q.name: q for q in quiescers},
    )
    return result, reporter


def test_specs_follow_the_quiesce_order_and_keep_the_policys_settings(root: Path) -> None:
    gate = TierQuiescer("http-gate", 5.0, 60.0, "continue", {"admin_url": "http://gate"})
    hook = TierQuiescer("command", options={"hold": ["sync"]})
    plan = plan_of(site(root), storage=(hook,), frontend=(gate,))
    specs = quiesce_specs(plan, plan.sets[0], get_mover)
    assert [(s.tier, s.kind) for s in specs] == [("frontend", "http-gate"), ("storage", "command")]
    assert specs[0].timeout_seconds == 5.0 and specs[0].lease_seconds == 60.0
    assert specs[0].on_error is OnError.CONTINUE and specs[1].on_error is OnError.FAIL
    assert dict(specs[0].options) == {"admin_url": "http://gate"}


def test_a_generated_postgresql_quiescer_connects_to_the_primary() -> None:
    plan = plan_of(topology(web_cluster()))
    (spec,) = quiesce_specs(plan, plan.sets[0], get_mover)
    assert (spec.kind, spec.tier) == ("postgresql", "database")
    dsn = str(spec.options["dsn"])
    assert "host=10.0.0.11" in dsn and "user=postgres" in dsn


def test_a_set_without_quiescers_is_not_held(root: Path, repo: Repository, tmp_path: Path) -> None:
    result, _ = run(plan_of(site(root)), repo, tmp_path)
    assert result.status is Status.COMPLETED
    (site_set,) = [s for s in list_sets(repo) if s.name == "site"]
    assert all("quiesce" not in snap.metadata["set"] for snap in repo.snapshots())  # type: ignore[operator]
    assert site_set.complete


def test_the_copy_is_the_cut_taken_while_held(root: Path, repo: Repository, tmp_path: Path) -> None:
    calls: list[str] = []
    late = root / "data" / "a.txt"
    gate = Recorder("gate", calls, at_resume=lambda: late.write_bytes(b"after the cut\n"))
    hook = Recorder("hook", calls)
    plan = plan_of(site(root), frontend=(TierQuiescer("gate"),), storage=(TierQuiescer("hook"),))
    result, _ = run(plan, repo, tmp_path, gate, hook)
    assert result.status is Status.COMPLETED
    assert calls == ["hold frontend", "hold storage", "resume storage", "resume frontend"]
    (site_set,) = [s for s in list_sets(repo) if s.name == "site"]
    out = tmp_path / "out"
    assert (
        run_restore(plan_restore(site_set, INVENTORY, to=out), repo, ListReporter()).status
        is Status.COMPLETED
    )
    assert (out / "storage" / "data" / "a.txt").read_bytes() == b"alpha\n"
    meta = repo.snapshot(site_set.items[0].snapshot_id).metadata
    quiesce = meta["set"]["quiesce"]  # type: ignore[index,call-overload]
    assert [w["tier"] for w in quiesce["windows"]] == ["frontend", "storage"]
    assert all(w["held_at"] and w["resumed_at"] for w in quiesce["windows"])
    assert quiesce["issues"] == [] and quiesce["aborted"] is None
    assert quiesce["cuts"]["c1/data"]["cut"] in ("cp --reflink=auto -a", "copy")
    assert not os.path.exists(tmp_path / "staging") or not any((tmp_path / "staging").iterdir())


def test_a_failed_hold_with_fail_copies_nothing_and_resumes_every_tier(
    root: Path, repo: Repository, tmp_path: Path
) -> None:
    calls: list[str] = []
    plan = plan_of(site(root), frontend=(TierQuiescer("gate"),), storage=(TierQuiescer("hook"),))
    result, _ = run(plan, repo, tmp_path, Recorder("gate", calls), Recorder("hook", calls, True))
    assert result.status is Status.FAILED
    assert calls == ["hold frontend", "hold storage", "resume storage", "resume frontend"]
    assert {i.status for i in result.items if i.scope.startswith("c1/")} <= {ItemStatus.FAILED}
    site_items = [i for i in result.items if i.set_id == result.sets[0]]
    assert site_items and all("could not be quiesced" in i.message for i in site_items)


def test_a_failed_hold_with_continue_ends_partially_failed_and_says_why(
    root: Path, repo: Repository, tmp_path: Path
) -> None:
    calls: list[str] = []
    hook = TierQuiescer("hook", on_error="continue")
    plan = plan_of(site(root), storage=(hook,))
    result, reporter = run(plan, repo, tmp_path, Recorder("hook", calls, fail=True))
    assert result.status is Status.PARTIALLY_FAILED
    assert all(i.status is ItemStatus.OK for i in result.items)
    (issue,) = [e for e in reporter.of(Issue) if "quiesce" in e.message]
    assert "hook of tier storage (hold)" in issue.message
    assert "exited with status 1" in issue.message


def test_quiescers_are_written_only_when_set_and_read_back(root: Path) -> None:
    topo = site(root)
    bare = generate(topo, default_rules(), source="file:///t.yaml", now=NOW)
    assert "quiesce:" not in dump_policy(bare)
    gate = TierQuiescer("http-gate", 10.0, 90.0, "continue", {"admin_url": "http://g", "x": ["a"]})
    text = dump_policy(with_quiesce(bare, frontend=(gate,)))
    assert "quiesce:" in text
    loaded = parse_policy(text, "p.yaml")
    (front,) = [t for t in loaded.groups[0].tiers if t.name == "frontend"]
    assert front.quiesce == (gate,)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("on_error: maybe", "on_error"),
        ("lease_seconds: 1.0", "lease_seconds"),
        ("timeout_seconds: 0", "timeout_seconds"),
        ("colour: red", "colour"),
    ],
)
def test_bad_quiescer_settings_are_refused(root: Path, bad: str, says: str) -> None:
    bare = generate(site(root), default_rules(), source="file:///t.yaml", now=NOW)
    text = dump_policy(with_quiesce(bare, frontend=(TierQuiescer("http-gate"),)))
    text = text.replace(
        "on_error: fail", bad if bad.startswith("on_error") else f"on_error: fail\n        {bad}"
    )
    with pytest.raises(PolicyError, match=says):
        parse_policy(text, "p.yaml")


def test_the_inventory_adds_its_quiescers_to_the_policys(root: Path) -> None:
    topo = site(root)
    own = TierQuiescer("command", options={"pre": ["true"]})
    policy = with_quiesce(
        generate(topo, default_rules(), source="file:///t.yaml", now=NOW), frontend=(own,)
    )
    gate = TierQuiescer("http-gate", options={"admin_url": "http://127.0.0.1:8079"})
    inventory = parse_inventory(
        "quiesce:\n  site/frontend:\n  - {kind: http-gate, options: {admin_url: "
        '"http://127.0.0.1:8079"}}\n  c1/site/storage:\n  - {kind: command, on_error: continue,'
        " options: {pre: [sync]}}\n",
        "inventory.yaml",
    )
    assert inventory.quiescers("c1", "site", "frontend") == (gate,)
    plan = build(policy, topo, inventory, mover_for=mover_name_for, now=NOW)
    specs = quiesce_specs(plan, plan.sets[0], get_mover)
    assert [(s.tier, s.kind, s.on_error) for s in specs] == [
        ("frontend", "command", OnError.FAIL),
        ("frontend", "http-gate", OnError.FAIL),
        ("storage", "command", OnError.CONTINUE),
    ]


def test_a_bad_inventory_quiescer_names_its_line() -> None:
    with pytest.raises(InputError, match=r"inventory.yaml:3: .*on_error"):
        parse_inventory(
            "quiesce:\n  site/frontend:\n  - {kind: gate, on_error: later}\n", "inventory.yaml"
        )


def test_a_changed_quiescer_is_a_difference_between_policies(root: Path) -> None:
    bare = generate(site(root), default_rules(), source="file:///t.yaml", now=NOW)
    gated = with_quiesce(bare, frontend=(TierQuiescer("http-gate", options={"admin_url": "u"}),))
    (change,) = diff_policies(bare, gated)
    assert (change.section, change.field) == ("group", "tiers.frontend.quiesce")
    assert change.new == ["http-gate (fail, 30s, lease 120s, admin_url=u)"]


def paused_cut(paused_at: str | None) -> PostgresCut:
    pause = None
    if paused_at is not None:
        standby = Endpoint("node2", "127.0.0.1", "5432", "postgres")
        pause = ReplayPause(standby, "0/3000000", paused_at, 0.01, resumed=True)
    return PostgresCut(lsn="0/3000000", pause=pause)


@pytest.mark.parametrize(
    ("end", "before", "after"),
    [
        ("0/2FFFFF8", True, False),  # misses writes acknowledged before the cut
        ("0/3000000", False, False),
        ("0/3000100", False, False),  # the pause position: exactly the cut
        ("0/3000108", False, True),  # replayed past the pause: holds later writes
    ],
)
def test_a_copy_must_end_between_the_cut_and_the_pause(end: str, before: bool, after: bool) -> None:
    cut = paused_cut("0/3000100")
    details: dict[str, JSONValue] = {"end_lsn": end}
    assert (cut.misses(details) is not None) is before
    assert (cut.exceeds(details) is not None) is after


def test_a_copy_without_a_pause_is_not_called_late() -> None:
    assert paused_cut(None).exceeds({"end_lsn": "0/9000000"}) is None
    assert paused_cut("0/3000100").exceeds({}) is None


def test_a_tier_whose_source_is_paused_at_the_cut_is_copied_first(root: Path) -> None:
    plan = plan_of(site(root))
    (pset,) = [s for s in plan.sets if s.name == "site"]
    order = list(pset.quiesce_order)
    last = next(name for name in reversed(order) if pset.tier(name).items)
    item = pset.tier(last).items[0]
    assert order.index(last) > 0  # so that going first is a change
    assert copy_order(pset, {}) == order
    assert copy_order(pset, {item.scope: PostgresCut(lsn="0/3000000")}) == order
    paused = {item.scope: paused_cut("0/3000100")}
    assert copy_order(pset, paused) == [last, *(n for n in order if n != last)]
