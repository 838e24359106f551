"""The engine on real files and a real (in-memory) repository: sets, statuses, events, restore."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from haprotect.engine import ListReporter, list_sets, run_backup, run_restore
from haprotect.engine.backup import RunOptions
from haprotect.engine.events import (
    Issue,
    ItemFinished,
    ItemStarted,
    RunFinished,
    RunStarted,
    SetStarted,
    TierFinished,
    event_to_json,
)
from haprotect.engine.sets import FORMAT, find_set, read_sets
from haprotect.errors import ComponentError, UsageError
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.plan import Plan, SnapshotSet
from haprotect.model.result import ItemStatus, Severity, Status
from haprotect.model.snapshot import FileError
from haprotect.model.topology import Topology
from haprotect.model.topology_json import topology_from_json, topology_to_json
from haprotect.movers.base import VANISHED, BackupOutcome
from haprotect.plan import plan_restore
from haprotect.policy import default_rules, generate
from haprotect.repo import KdfParams, Repository
from haprotect.repo.errors import SnapshotNotFound
from haprotect.storage.memory import MemoryStore
from haprotect.testing.builders import app, cluster, shared, tier, topology
from haprotect.testing.movers import failing_files
from haprotect.testing.plans import plan_with_movers

FAST_KDF = KdfParams(n=1 << 10)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INVENTORY = Inventory((NodeAccess("node1", "node1", True),), this_host="backup-host")


def site(root: Path) -> Topology:
    """App ``site``: tier storage (data), tier frontend (static) on it; ``notes`` alone."""
    return topology(
        cluster(
            "c1",
            datasets=(
                shared("data", location={"directory": str(root / "data")}),
                shared("static", location={"directory": str(root / "static")}),
                shared("notes", location={"directory": str(root / "notes")}),
            ),
            applications=(app("site", tier("storage", ["data"]), tier("frontend", ["static"])),),
        )
    )


def make_files(root: Path) -> None:
    for name, files in {
        "data": {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(300_000)},
        "static": {"index.html": b"<h1>site</h1>\n"},
        "notes": {"todo": b"restore me\n"},
    }.items():
        for rel, content in files.items():
            path = root / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def plan_for(root: Path, topo: Topology | None = None) -> Plan:
    topo = topo or site(root)
    policy = generate(topo, default_rules(), source="file:///site.yaml", now=NOW)
    return plan_with_movers(policy, topo, INVENTORY, NOW)


@pytest.fixture
def repo() -> Repository:
    return Repository.init(MemoryStore("memory://engine/"), "pw", kdf=FAST_KDF)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_files(tmp_path / "src")
    return tmp_path / "src"


def backup(plan: Plan, repo: Repository, tmp_path: Path) -> tuple[ListReporter, Status]:
    reporter = ListReporter()
    options = RunOptions(staging=tmp_path / "staging")
    result = run_backup(plan, repo, reporter, options)
    return reporter, result.status


def the_set(repo: Repository, name: str) -> SnapshotSet:
    return next(s for s in list_sets(repo) if s.name == name)


def test_an_application_is_one_set_that_the_repository_alone_describes(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    plan = plan_for(root)
    reporter, status = backup(plan, repo, tmp_path)
    assert status is Status.COMPLETED
    snapshots = repo.snapshots()
    assert len(snapshots) == 5  # site: topology + 2 items; notes: topology + 1 item
    assert all(s.metadata["format"] == FORMAT for s in snapshots)
    sets = read_sets(snapshots)
    assert sorted(s.name for s in sets) == ["notes", "site"]
    site_set = the_set(repo, "site")
    assert site_set.application == "site"
    assert site_set.complete
    assert site_set.restore_order == ("storage", "frontend")
    assert site_set.quiesce_order == ("frontend", "storage")
    assert [t.depends_on for t in site_set.tiers] == [(), ("storage",)]
    data = site_set.items_of("storage")[0]
    assert (data.dataset, data.node, data.role, data.mover) == ("data", "node1", "active", "files")
    assert data.path_key == "directory"
    assert data.root == "/haprotect/c1/datasets/data"  # not where it was read: stable
    assert data.restore_node == "node1"
    assert (data.files, data.bytes) == (2, 300_006)
    assert data.started <= data.finished
    assert any("role active" in why for why in data.why)
    snapshot = repo.snapshot(data.snapshot_id)
    block = snapshot.metadata["set"]
    assert isinstance(block, dict)
    assert block["policy"] == {
        "name": plan.policy_name,
        "fingerprint": plan.policy_fingerprint,
        "source": "file:///site.yaml",
    }
    assert f"set={site_set.id}" in snapshot.tags
    assert (snapshot.metadata["application"], snapshot.metadata["dataset"]) == ("site", "data")
    assert snapshot.metadata["tier"] == "storage"
    assert snapshot.host == "node1"
    lone = the_set(repo, "notes")
    assert lone.application is None and [i.dataset for i in lone.items] == ["notes"]
    started = reporter.of(ItemStarted)
    assert [e.item.dataset for e in started] == ["static", "data", "notes"]  # quiesce order
    assert isinstance(reporter.events[0], RunStarted)
    assert isinstance(reporter.events[-1], RunFinished)
    json.dumps([event_to_json(e) for e in reporter.events])


def test_the_topology_the_set_was_planned_from_is_in_the_repository(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    plan = plan_for(root)
    backup(plan, repo, tmp_path)
    site_set = the_set(repo, "site")
    assert site_set.topology_snapshot is not None
    item = repo.snapshot(site_set.items[0].snapshot_id)
    assert item.metadata["set"]["topology"] == site_set.topology_snapshot  # type: ignore[index]
    out = tmp_path / "topology-out"
    repo.restore(site_set.topology_snapshot, out)
    topo_snapshot = repo.snapshot(site_set.topology_snapshot)
    restored = json.loads((out / topo_snapshot.paths[0].lstrip("/")).read_text())
    assert topology_from_json(restored) == plan.topology
    assert restored == topology_to_json(plan.topology)


def test_a_missing_directory_fails_its_item_and_the_run_is_partially_failed(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    (root / "static" / "index.html").unlink()
    (root / "static").rmdir()
    reporter, status = backup(plan_for(root), repo, tmp_path)
    assert status is Status.PARTIALLY_FAILED
    finished = {e.item.dataset: e for e in reporter.of(ItemFinished)}
    assert finished["static"].status is ItemStatus.FAILED
    assert "is not a directory" in finished["static"].message
    assert finished["data"].status is ItemStatus.OK
    site_set = the_set(repo, "site")
    assert site_set.missing == (("frontend", "static"),)
    assert not site_set.complete
    errors = [e for e in reporter.of(Issue) if e.severity is Severity.ERROR]
    assert [e.scope for e in errors] == ["c1/static"]


def test_nothing_backed_up_is_failed(repo: Repository, root: Path, tmp_path: Path) -> None:
    for name in ("data", "static", "notes"):
        os.rename(root / name, root / f"{name}.gone")
    _, status = backup(plan_for(root), repo, tmp_path)
    assert status is Status.FAILED
    assert status.exit_code == 11
    assert repo.snapshots() == []  # not even the sets' topology copies


exploding = failing_files(
    backup_fails={"static": KeyError("oops")},
    restore_fails={"data": ComponentError("the disk is on fire")},
)
"""A mover with a bug in one item's backup and a failed disk in another's restore."""


def test_a_mover_bug_fails_one_item_only(repo: Repository, root: Path, tmp_path: Path) -> None:
    reporter = ListReporter()
    result = run_backup(
        plan_for(root),
        repo,
        reporter,
        RunOptions(staging=tmp_path / "staging"),
        movers=exploding,
    )
    assert result.status is Status.PARTIALLY_FAILED
    assert [i.scope for i in result.failed] == ["c1/static"]
    assert result.failed[0].message == "KeyError: 'oops'"


def test_restore_goes_bottom_up_and_checks_each_tree(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    site_set = the_set(repo, "site")
    out = tmp_path / "out"
    reporter = ListReporter()
    result = run_restore(plan_restore(site_set, INVENTORY, to=out), repo, reporter)
    assert result.status is Status.COMPLETED
    assert [e.item.tier for e in reporter.of(ItemStarted)] == ["storage", "frontend"]
    assert reporter.of(SetStarted)[0].order == ("storage", "frontend")
    assert (out / "storage" / "data" / "sub" / "b.bin").read_bytes() == (
        root / "data" / "sub" / "b.bin"
    ).read_bytes()
    assert (out / "frontend" / "static" / "index.html").read_bytes() == b"<h1>site</h1>\n"
    messages = [e.message for e in reporter.of(ItemFinished)]
    assert messages[0].startswith("2 files, 293.0 KiB in ") and "as in the snapshot" in messages[0]


def test_restore_in_place_refuses_live_data_unless_told_to_overwrite(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    site_set = the_set(repo, "site")
    (root / "data" / "a.txt").write_bytes(b"changed\n")
    (root / "data" / "new-since").write_bytes(b"x")
    plan = plan_restore(site_set, INVENTORY, tiers=["storage"])
    assert plan.live
    assert str(root / "data" / "a.txt") in plan.items[0].existing
    refused = run_restore(plan, repo, ListReporter())
    assert refused.status is Status.FAILED
    assert "is not empty: refusing to overwrite it" in refused.items[0].message
    assert (root / "data" / "a.txt").read_bytes() == b"changed\n"
    done = run_restore(replace(plan, overwrite=True), repo, ListReporter())
    assert done.status is Status.COMPLETED
    assert (root / "data" / "a.txt").read_bytes() == b"alpha\n"
    assert not (root / "data" / "new-since").exists()
    assert sorted(os.listdir(root / "data")) == ["a.txt", "sub"]
    assert (root / "static" / "index.html").exists()  # the other tier is untouched


def test_a_tier_whose_dependency_failed_is_skipped(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    reporter = ListReporter()
    plan = plan_restore(the_set(repo, "site"), INVENTORY, to=tmp_path / "out")
    result = run_restore(plan, repo, reporter, movers=exploding)
    assert result.status is Status.FAILED
    statuses = {i.dataset: (i.status, i.message) for i in result.items}
    assert statuses["data"] == (ItemStatus.FAILED, "the disk is on fire")
    assert statuses["static"][0] is ItemStatus.SKIPPED
    assert "depends on storage" in statuses["static"][1]
    assert [t.ok for t in reporter.of(TierFinished)] == [False, False]
    assert not (tmp_path / "out" / "frontend").exists()


def test_a_tier_that_lost_files_names_them_and_its_dependents_are_restored(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    site_set = the_set(repo, "site")
    storage = next(i for i in site_set.items if i.tier == "storage")
    node = next(
        n for n in repo.nodes(repo.snapshot(storage.snapshot_id)) if n.path.endswith("b.bin")
    )
    location = repo.index.lookup(node.content[0])  # type: ignore[arg-type]
    assert location is not None
    pack = bytearray(repo.store.get(location.pack.key))
    pack[location.offset + 40] ^= 0x01
    repo.store.put(location.pack.key, bytes(pack))
    out = tmp_path / "out"
    reporter = ListReporter()

    result = run_restore(plan_restore(site_set, INVENTORY, to=out), repo, reporter)

    assert result.status is Status.PARTIALLY_FAILED
    statuses = {i.dataset: i.status for i in result.items}
    assert statuses == {"data": ItemStatus.PARTIAL, "static": ItemStatus.OK}
    (error,) = [i for i in result.issues if i.severity is Severity.ERROR]
    assert error.message.startswith(
        f"1 files could not be restored: /{node.path}: lost bytes 0-{location.raw_length - 1} "
        f"(chunk {node.content[0].hex()[:12]}… in pack {location.pack.id[:12]}…: "  # type: ignore[union-attr]
        "failed authentication"
    ), error.message
    assert any("restored over storage, which lost files" in i.message for i in result.issues)
    assert (out / "storage" / "data" / "a.txt").read_bytes() == b"alpha\n"
    assert not (out / "storage" / "data" / "sub" / "b.bin").exists()
    assert (out / "storage" / "data" / "sub" / "b.bin.haprotect-damaged").exists()
    assert (out / "frontend" / "static" / "index.html").read_bytes() == b"<h1>site</h1>\n"
    assert [t.ok for t in reporter.of(TierFinished)] == [False, True]


def test_a_restore_that_lost_every_file_failed(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    notes_set = the_set(repo, "notes")
    (item,) = notes_set.items
    (node,) = [n for n in repo.nodes(repo.snapshot(item.snapshot_id)) if n.path.endswith("todo")]
    location = repo.index.lookup(node.content[0])  # type: ignore[arg-type]
    assert location is not None
    pack = bytearray(repo.store.get(location.pack.key))
    pack[location.offset + location.length // 2] ^= 0x01
    repo.store.put(location.pack.key, bytes(pack))

    result = run_restore(
        plan_restore(notes_set, INVENTORY, to=tmp_path / "out"), repo, ListReporter()
    )

    assert result.status is Status.FAILED
    assert [i.status for i in result.items] == [ItemStatus.FAILED]
    named = f"1 files could not be restored: /{node.path}: lost bytes"
    assert any(i.message.startswith(named) for i in result.issues), result.issues


def test_sets_are_found_by_prefix_or_as_latest(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    plan = plan_for(root)
    backup(plan, repo, tmp_path)
    backup(plan, repo, tmp_path)
    sets = list_sets(repo)
    site_sets = [s for s in sets if s.name == "site"]
    assert len(site_sets) == 2
    assert find_set(sets, "latest", "site") == site_sets[-1]
    assert find_set(sets, site_sets[0].id[:6]) == site_sets[0]
    with pytest.raises(SnapshotNotFound):
        find_set(sets, "ffffffffffffff")
    with pytest.raises(SnapshotNotFound):
        find_set(sets, "latest", "nope")
    with pytest.raises(UsageError, match="ambiguous"):
        find_set(sets, "")


def test_unknown_tiers_and_escaping_names_are_refused(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    site_set = the_set(repo, "site")
    with pytest.raises(UsageError, match="has no tier database"):
        plan_restore(site_set, INVENTORY, tiers=["database"])
    hostile = replace(site_set, items=(replace(site_set.items[0], dataset="../../etc"),))
    planned = plan_restore(hostile, INVENTORY, to=tmp_path / "out")
    assert planned.items[0].problems
    assert "would leave" in planned.items[0].problems[0]


def test_restoring_in_place_needs_the_node_to_be_this_machine(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    remote = Inventory((NodeAccess("node1", "10.1.1.1", False),), origin="inv.yaml")
    planned = plan_restore(the_set(repo, "site"), remote)
    assert (
        "node1's files are not on this machine (inv.yaml does not say local: true)"
        in (planned.items[0].problems[0])
    )


def test_a_vanished_file_is_noted_but_an_unreadable_one_makes_the_item_partial(
    repo: Repository, root: Path, tmp_path: Path
) -> None:
    backup(plan_for(root), repo, tmp_path)
    item = the_set(repo, "notes").items[0]
    snapshot = repo.snapshot(item.snapshot_id)
    gone = FileError("srv/notes/.upload.part", VANISHED)
    locked = FileError("srv/notes/secret", "Permission denied")
    outcome = BackupOutcome(replace(snapshot, errors=(gone, locked)), "copied")
    assert outcome.errors == (locked,)
    assert outcome.vanished == (gone,)
    (only_gone,) = read_sets([replace(snapshot, errors=(gone,))])
    assert only_gone.items[0].errors == 0
    (both,) = read_sets([replace(snapshot, errors=(gone, locked))])
    assert both.items[0].errors == 1
    assert not both.complete
