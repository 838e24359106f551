"""Complete and partial sets: what ``latest`` means, what ``snapshots`` says, stable paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haprotect.cli.main import app as cli
from haprotect.engine import ListReporter, list_sets, run_backup
from haprotect.engine.backup import RunOptions
from haprotect.engine.sets import find_set, read_sets
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.plan import Plan, SnapshotSet
from haprotect.model.result import Status
from haprotect.movers import get_mover
from haprotect.policy import default_rules, generate
from haprotect.repo import KdfParams, Repository
from haprotect.repo.errors import SnapshotNotFound
from haprotect.storage.local import LocalStore
from haprotect.testing.movers import failing_files
from haprotect.testing.plans import plan_with_movers, site

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INVENTORY = Inventory((NodeAccess("node1", "node1", True),), this_host="backup-host")
PASSWORD = "pw"


def plan_for(root: Path) -> Plan:
    topo = site(root)
    policy = generate(topo, default_rules(), source="file:///site.yaml", now=NOW)
    return plan_with_movers(policy, topo, INVENTORY, NOW)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    files = {"data/a.txt": b"version 1\n", "static/index.html": b"<h1>site</h1>\n"}
    for name, content in files.items():
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tmp_path / "src"


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    Repository.init(LocalStore(tmp_path / "repo"), PASSWORD, kdf=KdfParams(n=1 << 10))
    return tmp_path / "repo"


def open_repo(repo_dir: Path) -> Repository:
    return Repository.open(LocalStore(repo_dir), PASSWORD)


def backup(repo_dir: Path, root: Path, tmp_path: Path, movers: Any = get_mover) -> Status:
    options = RunOptions(staging=tmp_path / "staging")
    repo = open_repo(repo_dir)
    return run_backup(plan_for(root), repo, ListReporter(), options, movers=movers).status


def site_sets(repo_dir: Path) -> list[SnapshotSet]:
    return [s for s in list_sets(open_repo(repo_dir)) if s.name == "site"]


interrupted = failing_files(backup_fails={"data": KeyboardInterrupt()})
"""Ctrl-C while ``data`` is copied (after ``static``: the copy goes top-down)."""


def complete_then_partial(repo_dir: Path, root: Path, tmp_path: Path) -> tuple[str, str]:
    """A complete set, then a newer one interrupted by Ctrl-C; their ids."""
    assert backup(repo_dir, root, tmp_path) is Status.COMPLETED
    (root / "data" / "a.txt").write_bytes(b"version 2\n")
    with pytest.raises(KeyboardInterrupt):
        backup(repo_dir, root, tmp_path, movers=interrupted)
    good, partial = site_sets(repo_dir)
    assert good.complete and not partial.complete
    return good.id, partial.id


def run_cli(repo_dir: Path, command: str, *args: str) -> Any:
    return CliRunner().invoke(
        cli,
        [command, *args, "--repo", f"file://{repo_dir}"],
        env={"HAPROTECT_PASSWORD": PASSWORD, "COLUMNS": "300"},
        catch_exceptions=False,
    )


def restore_cli(repo_dir: Path, *args: str) -> Any:
    return run_cli(repo_dir, "restore", *args, "--yes")


def test_latest_is_the_newest_complete_set_not_a_newer_partial_one(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    good, partial = complete_then_partial(repo_dir, root, tmp_path)
    sets = list_sets(open_repo(repo_dir))
    assert find_set(sets, "latest").id == good
    assert find_set(sets, "latest", "site").id == good
    assert find_set(sets, partial).id == partial  # by its id, still


def test_restore_latest_restores_the_complete_set(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    good, partial = complete_then_partial(repo_dir, root, tmp_path)
    out = tmp_path / "out"
    result = restore_cli(repo_dir, "latest", "--app", "site", "--to", str(out))
    assert result.exit_code == 0, result.output
    assert f"latest complete set: {good}" in result.output
    assert (out / "storage" / "data" / "a.txt").read_bytes() == b"version 1\n"
    assert (out / "frontend" / "static" / "index.html").exists()
    assert partial in result.output and "partial" in result.output  # says what it skipped


def test_without_a_complete_set_latest_names_the_partial_one_and_how_to_restore_it(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        backup(repo_dir, root, tmp_path, movers=interrupted)
    (partial,) = site_sets(repo_dir)
    assert partial.partial_because == ("storage/data has no snapshot",)
    with pytest.raises(SnapshotNotFound, match=f"no complete snapshot set of site.*{partial.id}"):
        find_set(list_sets(open_repo(repo_dir)), "latest", "site")
    result = restore_cli(repo_dir, "latest", "--to", str(tmp_path / "out"))
    assert result.exit_code == 7, result.output
    assert partial.id in result.output
    assert f"haprotect restore {partial.id}" in result.output
    assert not (tmp_path / "out").exists()
    by_id = restore_cli(repo_dir, partial.id, "--tier", "frontend", "--to", str(tmp_path / "out"))
    assert (tmp_path / "out" / "frontend" / "static" / "index.html").exists(), by_id.output


def test_a_set_without_its_topology_snapshot_is_partial(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    backup(repo_dir, root, tmp_path)
    (done,) = site_sets(repo_dir)
    assert done.complete and done.topology_snapshot is not None
    open_repo(repo_dir).forget(done.topology_snapshot)
    (left,) = site_sets(repo_dir)
    assert not left.complete
    assert left.partial_because == ("its topology snapshot is missing",)


def test_an_item_that_misses_writes_makes_its_set_partial(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    backup(repo_dir, root, tmp_path)
    repo = open_repo(repo_dir)
    snapshots = repo.snapshots()
    late = "the copy ends at WAL 0/10, before the cut at 0/20: it misses writes"
    changed = []
    for s in snapshots:
        meta = json.loads(json.dumps(s.metadata))
        if meta.get("dataset") == "data":
            meta["item"]["problems"] = [late]
        changed.append(type(s)(**{**{f: getattr(s, f) for f in s.__slots__}, "metadata": meta}))
    (found,) = [s for s in read_sets(changed) if s.name == "site"]
    assert found.partial_because == (f"storage/data: {late}",)


def snapshots_cli(repo_dir: Path, *args: str) -> Any:
    return run_cli(repo_dir, "snapshots", *args)


def test_snapshots_says_which_sets_are_complete_and_why_not(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    good, partial = complete_then_partial(repo_dir, root, tmp_path)
    backup(repo_dir, root, tmp_path)
    newest = site_sets(repo_dir)[-1]
    assert newest.topology_snapshot is not None
    open_repo(repo_dir).forget(newest.topology_snapshot)
    listed = {s["id"]: s for s in json.loads(snapshots_cli(repo_dir, "--json").stdout)}
    assert listed[good]["complete"] is True
    assert listed[partial]["complete"] is False
    assert listed[partial]["partial_because"] == ["storage/data has no snapshot"]
    assert listed[newest.id]["complete"] is False
    assert listed[newest.id]["partial_because"] == ["its topology snapshot is missing"]
    table = snapshots_cli(repo_dir).output
    cells = [[c.strip() for c in line.strip("│┃ ").split("│")] for line in table.splitlines()]
    rows = {row[0]: row for row in cells if len(row) == 5 and row[0]}
    assert "complete" in next(line for line in table.splitlines() if "┃ set" in line)
    assert rows[good][3] == "yes"
    assert rows[partial][3] == "no (partial): storage/data has no snapshot"
    assert rows[newest.id][3] == "no (partial): its topology snapshot is missing"


def test_every_backup_of_a_data_set_has_the_same_paths(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    backup(repo_dir, root, tmp_path)
    (root / "data" / "a.txt").write_bytes(b"version 2\n")
    backup(repo_dir, root, tmp_path)
    repo = open_repo(repo_dir)
    first, second = site_sets(repo_dir)
    for one, two in zip(first.items, second.items, strict=True):
        a, b = repo.snapshot(one.snapshot_id), repo.snapshot(two.snapshot_id)
        assert a.paths == b.paths == (f"/haprotect/c1/datasets/{one.dataset}",)
        assert b.parent == a.id
        assert (b.metadata["application"], b.metadata["dataset"]) == ("site", one.dataset)
    assert first.topology_snapshot and second.topology_snapshot
    topo = repo.snapshot(second.topology_snapshot)
    assert topo.paths == repo.snapshot(first.topology_snapshot).paths
    assert topo.paths == ("/haprotect/c1/topology/site.json",)
    assert topo.metadata["application"] == "site"
    assert not any(str(tmp_path) in s.paths[0] for s in repo.snapshots())


def forget_cli(repo_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli,
        ["repo", "forget", f"file://{repo_dir}", *args],
        env={"HAPROTECT_PASSWORD": PASSWORD, "COLUMNS": "300"},
        catch_exceptions=False,
    )


def test_forget_judges_the_sets_of_an_application_together_and_whole(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    oldest, _ = complete_then_partial(repo_dir, root, tmp_path)
    backup(repo_dir, root, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        backup(repo_dir, root, tmp_path, movers=interrupted)
    _, partial, newest_complete, newest = site_sets(repo_dir)
    result = forget_cli(repo_dir, "--keep-last", "1", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    (group,) = summary["sets"]
    assert group["group"] == {"cluster": "c1", "application": "site"}
    decisions = {s["id"]: (s["keep"], s["complete"]) for s in group["sets"]}
    assert decisions == {
        newest.id: (True, False),  # partial, newer than every complete set
        newest_complete.id: (True, True),  # keep-last 1
        partial.id: (False, False),
        oldest: (False, True),
    }
    removed_sets = {s["id"]: s["snapshots"] for s in group["sets"] if not s["keep"]}
    assert sorted(summary["removed"]) == sorted(i for ids in removed_sets.values() for i in ids)
    assert len(removed_sets[oldest]) == 3  # its topology and both items
    assert summary["groups"] == []  # no snapshot of a set judged on its own
    assert len(site_sets(repo_dir)) == 4  # a dry run
    text = forget_cli(repo_dir, "--keep-last", "1", "--dry-run").output
    assert "sets of cluster c1, application site" in text
    assert "would remove 5 snapshots" in text
    done = forget_cli(repo_dir, "--keep-last", "1", "--app", "site")
    assert done.exit_code == 0, done.output
    assert [s.id for s in site_sets(repo_dir)] == [newest_complete.id, newest.id]
    assert find_set(list_sets(open_repo(repo_dir)), "latest").id == newest_complete.id


def test_forget_never_removes_the_last_complete_set(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    good, partial = complete_then_partial(repo_dir, root, tmp_path)
    result = forget_cli(repo_dir, "--keep-tag", "none-has-it")
    assert result.exit_code == 0, result.output
    assert "the newest complete set of its group: never removed" in result.output
    assert [s.id for s in site_sets(repo_dir)] == [good, partial]


def test_forget_of_another_application_or_data_set_leaves_the_sets_alone(
    repo_dir: Path, root: Path, tmp_path: Path
) -> None:
    backup(repo_dir, root, tmp_path)
    backup(repo_dir, root, tmp_path)
    for chosen in (("--app", "other"), ("--dataset", "other")):
        forget_cli(repo_dir, "--keep-last", "1", *chosen)
        assert len(site_sets(repo_dir)) == 2
    forget_cli(repo_dir, "--keep-last", "1", "--dataset", "static")
    assert len(site_sets(repo_dir)) == 1
