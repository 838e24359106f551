"""The files mover: unreadable files, hostile snapshots, putting trees in place; the CLI."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.engine import ListReporter, list_sets, run_backup
from haprotect.engine.backup import RunOptions
from haprotect.engine.events import Issue
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.model.result import ItemStatus, Severity, Status
from haprotect.model.snapshot import Node, NodeType
from haprotect.movers import mover_name_for
from haprotect.movers.files import count_tree
from haprotect.movers.placement import install_tree
from haprotect.plan import build
from haprotect.policy import default_rules, generate
from haprotect.repo import KdfParams, Repository
from haprotect.repo.format.snapshots import write_snapshot
from haprotect.storage import open_store
from haprotect.storage.memory import MemoryStore
from haprotect.testing.builders import cluster, shared, topology
from haprotect.testing.repo import write_crafted_snapshot

FAST_KDF = KdfParams(n=1 << 10)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INVENTORY = Inventory((NodeAccess("node1", "node1", True),), this_host="backup-host")
NOBODY = 65534
T = TypeVar("T")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory any user can reach (tmp_path lies under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="hp-files-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_unprivileged(action: Callable[[], T]) -> T:
    """Run ``action`` where file permissions apply: as root, in a thread whose
    file-system uid is nobody's (Linux keeps it per thread; the capabilities
    that let root read anything are dropped with it)."""
    if os.geteuid() != 0:
        return action()
    libc = ctypes.CDLL(None, use_errno=True)
    box: dict[str, object] = {}

    def run() -> None:
        libc.setfsuid(NOBODY)
        try:
            if libc.setfsuid(NOBODY) != NOBODY:
                box["error"] = OSError("setfsuid did not take")
                return
            box["value"] = action()
        except BaseException as exc:
            box["error"] = exc
        finally:
            libc.setfsuid(0)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def test_unreadable_files_make_the_item_partial_and_the_run_never_completed(
    open_dir: Path,
) -> None:
    data = open_dir / "data"
    data.mkdir(mode=0o755)
    (data / "ok.txt").write_text("readable\n")
    (data / "ok.txt").chmod(0o644)
    secret = data / "secret.txt"
    secret.write_text("nobody may read this\n")
    secret.chmod(0o000)
    staging = open_dir / "staging"
    staging.mkdir(mode=0o777)
    staging.chmod(0o777)
    topo = topology(cluster("c1", datasets=(shared("data", location={"directory": str(data)}),)))
    policy = generate(topo, default_rules(), source="file:///c1.yaml", now=NOW)
    plan = build(policy, topo, INVENTORY, mover_for=mover_name_for, now=NOW)
    repo = Repository.init(MemoryStore("memory://files/"), "pw", kdf=FAST_KDF)
    reporter = ListReporter()
    result = as_unprivileged(lambda: run_backup(plan, repo, reporter, RunOptions(staging=staging)))
    assert result.status is Status.PARTIALLY_FAILED
    (item,) = result.items
    assert item.status is ItemStatus.PARTIAL
    assert "1 could not be read" in item.message
    errors = [e for e in reporter.of(Issue) if e.severity is Severity.ERROR]
    assert len(errors) == 1
    assert "secret.txt: Permission denied" in errors[0].message
    (snapshot_set,) = list_sets(repo)
    assert not snapshot_set.complete
    assert snapshot_set.items[0].errors == 1


def test_a_snapshot_with_an_escaping_path_is_refused_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "site" / "data"
    data.mkdir(parents=True)
    (data / "index.html").write_text("hi\n")
    topo = topology(cluster("c1", datasets=(shared("data", location={"directory": str(data)}),)))
    policy = generate(topo, default_rules(), source="file:///c1.yaml", now=NOW)
    plan = build(policy, topo, INVENTORY, mover_for=mover_name_for, now=NOW)
    url = f"file://{tmp_path}/repo"
    repo = Repository.init(open_store(url), "pw", kdf=FAST_KDF)
    run_backup(plan, repo, ListReporter(), RunOptions(staging=tmp_path / "staging"))
    (good,) = list_sets(repo)
    honest = repo.snapshot(good.items[0].snapshot_id)
    root = str(data).lstrip("/")
    parts = root.split("/")
    nodes = [Node("/".join(parts[: i + 1]), NodeType.DIR, 0o755) for i in range(len(parts))]
    nodes.insert(1, Node("tmp/../../escaped.txt", NodeType.FILE, 0o644))
    crafted = write_crafted_snapshot(repo, nodes)
    hostile = replace(crafted, metadata=honest.metadata, paths=honest.paths)
    write_snapshot(repo.store, repo._key, hostile)
    repo.forget(crafted.id)
    repo.forget(honest.id)
    target = tmp_path / "restored"
    env = {"HAPROTECT_PASSWORD": "pw"}
    result = CliRunner().invoke(
        app,
        ["restore", good.id, "--repo", url, "--to", str(target), "--yes", "--json"],
        env=env,
    )
    assert result.exit_code == Status.FAILED.exit_code == 11, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    finished = [e for e in events if e["event"] == "item_finished"]
    assert finished[0]["status"] == "failed"
    assert "would escape the target" in finished[0]["message"]
    escaped = [p for p in tmp_path.parent.rglob("escaped.txt")]
    assert escaped == []
    assert not (target / "data" / "data").exists()


def test_installing_over_a_directory_keeps_it_and_replaces_what_it_holds(tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    (target / "stale").write_text("old")
    inode = target.stat().st_ino
    restored = tmp_path / "restored"
    (restored / "d").mkdir(parents=True)
    (restored / "d" / "f").write_text("new")
    restored.chmod(0o751)
    install_tree(restored, target)
    assert target.stat().st_ino == inode
    assert sorted(os.listdir(target)) == ["d"]
    assert (target / "d" / "f").read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o751
    assert count_tree(target) == (1, 3)


TOPOLOGY = """\
apiVersion: haprotect/v1
kind: Topology
clusters:
  - name: web
    nodes: [web1, web2]
    datasets:
      - id: uploads
        kind: filesystem
        location: {{directory: {uploads}}}
        replication: shared
        primary: web1
        ha: true
    applications:
      - name: site
        tiers:
          - {{name: web, resources: [nginx], datasets: [uploads]}}
"""


def test_the_cli_backs_up_lists_and_restores_a_set(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "cat.jpg").write_bytes(os.urandom(5000))
    source = tmp_path / "web.yaml"
    source.write_text(TOPOLOGY.format(uploads=uploads))
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"where: file://{tmp_path}/repo\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"nodes": {"web1": {"local": True}}}))
    runner = CliRunner()
    env = {"HAPROTECT_PASSWORD": "pw", "HAPROTECT_STAGING": str(tmp_path / "staging")}
    policy = tmp_path / "policy.yaml"
    planned = runner.invoke(
        app, ["plan", f"file://{source}", "-o", str(policy), "--rules", str(rules)]
    )
    assert planned.exit_code == 0, planned.output
    dry = runner.invoke(
        app, ["backup", str(policy), "--inventory", str(inventory), "--dry-run"], env=env
    )
    assert dry.exit_code == 0, dry.output
    assert "uploads (filesystem): mover files, read from web1 (active)" in dry.stdout
    assert not (tmp_path / "repo").exists()
    no_init = runner.invoke(app, ["backup", str(policy), "--inventory", str(inventory)], env=env)
    assert no_init.exit_code == 7
    assert "add --init" in no_init.output
    done = runner.invoke(
        app, ["backup", str(policy), "--inventory", str(inventory), "--init", "--json"], env=env
    )
    assert done.exit_code == 0, done.output
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["event"] == "run_finished"
    assert events[-1]["result"]["status"] == "completed"
    listed = runner.invoke(
        app, ["snapshots", "--repo", f"file://{tmp_path}/repo", "--json"], env=env
    )
    assert listed.exit_code == 0, listed.output
    (listed_set,) = json.loads(listed.stdout)
    assert listed_set["application"] == "site" and listed_set["complete"]
    assert listed_set["items"][0]["node"] == "web1"
    (uploads / "cat.jpg").unlink()
    answers = "web\noriginal\ny\ny\n"
    (uploads / "dog.jpg").write_text("not backed up")
    asked = runner.invoke(
        app,
        ["restore", "latest", "--repo", f"file://{tmp_path}/repo", "--inventory", str(inventory)],
        input=answers,
        env=env,
    )
    assert asked.exit_code == 0, asked.output
    assert "will be replaced:" in asked.output and "dog.jpg" in asked.output
    assert "overwrites LIVE data" in asked.output
    assert (uploads / "cat.jpg").stat().st_size == 5000
    assert not (uploads / "dog.jpg").exists()
    declined = runner.invoke(
        app,
        ["restore", "latest", "--repo", f"file://{tmp_path}/repo", "--inventory", str(inventory)],
        input="all\noriginal\ny\nn\n",
        env=env,
    )
    assert declined.exit_code == 1
    assert "nothing restored" in declined.output
