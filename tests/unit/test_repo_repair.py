"""``repo repair index`` and ``repo repair snapshots``, in Python and from the CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.model.snapshot import NodeType
from haprotect.repo import KdfParams, Repository
from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.index import INDEX_PREFIX
from haprotect.repo.format.indexset import load_index_set
from haprotect.repo.format.snapshots import SNAPSHOTS_PREFIX
from haprotect.repo.maintenance.repairsnapshots import REPAIRED_FROM, REPAIRED_TAG
from haprotect.storage.local import LocalStore
from haprotect.testing.repo import MiB

runner = CliRunner()


class Fixture:
    """Three snapshots; ``victim`` (two chunks) is in the last two only."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "repo"
        self.store = LocalStore(self.path)
        repo = Repository.init(self.store, "pw", kdf=KdfParams(n=1 << 10), pack_size=MiB)
        self.src = tmp_path / "src"
        self.src.mkdir()
        rng = random.Random(5)
        for i in range(3):
            (self.src / f"keep{i}").write_bytes(rng.randbytes(200_000))
        self.first = repo.backup([self.src])
        self.victim = self.src / "victim.bin"
        self.victim.write_bytes(rng.randbytes(6 * MiB))
        self.second = repo.backup([self.src])
        (self.src / "later").write_text("later\n")
        self.third = repo.backup([self.src])
        self.tmp = tmp_path

    def open(self) -> Repository:
        return Repository.open(self.store, "pw")

    def everything(self) -> dict[str, bytes]:
        return {b.key: self.store.get(b.key) for b in self.store.list("")}

    def flip_index(self) -> None:
        for info in list(self.store.list(INDEX_PREFIX)):
            data = bytearray(self.store.get(info.key))
            data[-20] ^= 0x40
            self.store.put(info.key, bytes(data))

    def victim_chunks(self, repo: Repository) -> list[bytes]:
        node = next(n for n in repo.nodes(self.third) if n.path.endswith("victim.bin"))
        return [c for c in node.content if isinstance(c, bytes)]

    def drop_pack_of(self, repo: Repository, chunk: bytes) -> str:
        where = repo.index.lookup(chunk)
        assert where is not None
        self.store.delete(where.pack.key)
        return where.pack.id

    def restore(self, repo: Repository, snapshot_id: str, name: str) -> Path:
        repo.restore(snapshot_id, self.tmp / name)
        return self.tmp / name / str(self.src).lstrip("/")


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def test_repair_index_rebuilds_a_damaged_index_from_the_packs(fx: Fixture) -> None:
    fx.flip_index()
    repo = fx.open()
    assert not repo.check().ok
    before = fx.everything()
    preview = repo.repair_index(dry_run=True)
    assert preview.changed and len(preview.damaged) == 3 and preview.blobs_written == 1
    assert fx.everything() == before, "a dry run writes nothing"
    report = repo.repair_index()
    assert report.packs_indexed == report.packs and not report.unreadable
    assert report.blobs_removed == 3 and report.blobs_written == 1
    fresh = fx.open()
    assert not fresh.index_damage
    assert fresh.check(read_data=True).findings == ()
    out = fx.restore(fresh, fx.third.id, "out")
    assert (out / "victim.bin").read_bytes() == fx.victim.read_bytes()
    again = fresh.repair_index()
    assert not again.changed and again.blobs_written == 0, "a whole index is left alone"


def test_repair_index_drops_missing_packs_and_indexes_orphans(fx: Fixture) -> None:
    repo = fx.open()
    gone = fx.drop_pack_of(repo, fx.victim_chunks(repo)[-1])
    blobs = load_index_set(fx.store, repo.key, keep=True).blobs
    other = next(n for n, packs in sorted(blobs.items()) if gone not in {i.id for i, _ in packs})
    fx.store.delete(other)
    report = repo.repair_index()
    assert report.missing == (gone,) and report.added
    listed = {p.id for p in fx.open().index.packs()}
    assert gone not in listed and set(report.added) <= listed


def test_repair_snapshots_truncates_files_with_lost_chunks(fx: Fixture) -> None:
    repo = fx.open()
    chunks = fx.victim_chunks(repo)
    assert len(chunks) >= 2
    fx.drop_pack_of(repo, chunks[-1])
    report = repo.check()
    assert {f.kind for f in report.errors} == {"missing-pack"}
    before = fx.everything()
    preview = repo.repair_snapshots(dry_run=True, forget=True)
    assert fx.everything() == before
    assert [r.original for r in preview] == [fx.second.id, fx.third.id]
    done = repo.repair_snapshots(forget=True)
    assert [r.original for r in done] == [fx.second.id, fx.third.id]
    assert all(r.new and r.forgotten for r in done)
    (truncated,) = done[-1].files
    assert truncated.size == 6 * MiB and 0 < truncated.kept < truncated.size
    fresh = fx.open()
    report = fresh.check(read_data=True)
    assert report.ok, [f.message for f in report.errors]
    ids = {s.id for s in fresh.snapshots()}
    assert fx.second.id not in ids and fx.third.id not in ids and fx.first.id in ids
    new = fresh.snapshot(done[-1].new or "")
    assert new.metadata[REPAIRED_FROM] == fx.third.id and REPAIRED_TAG in new.tags
    assert new.time == fx.third.time and new.paths == fx.third.paths
    assert any("content lost" in e.message and e.path.endswith("victim.bin") for e in new.errors)
    out = fx.restore(fresh, new.id, "out")
    victim = (out / "victim.bin").read_bytes()
    assert victim == fx.victim.read_bytes()[: truncated.kept]
    for name in ("keep0", "keep1", "keep2", "later"):
        assert (out / name).read_bytes() == (fx.src / name).read_bytes()


def test_repair_snapshots_without_forget_keeps_the_originals(fx: Fixture) -> None:
    repo = fx.open()
    fx.drop_pack_of(repo, fx.victim_chunks(repo)[0])
    done = repo.repair_snapshots([fx.third.id[:8]])
    assert [r.original for r in done] == [fx.third.id] and done[0].files[0].kept == 0
    assert fx.store.exists(SNAPSHOTS_PREFIX + fx.third.id)
    assert len(fx.open().snapshots()) == 4


def test_repair_snapshots_leaves_out_what_a_lost_tree_chunk_held(fx: Fixture) -> None:
    repo = fx.open()
    only_third = [c for c in fx.third.tree if c not in fx.first.tree + fx.second.tree]
    assert only_third
    fx.drop_pack_of(repo, bytes.fromhex(only_third[0]))
    (done,) = [r for r in repo.repair_snapshots(forget=True) if r.original == fx.third.id]
    assert done.lost_tree_chunks >= 1
    fresh = fx.open()
    assert fresh.check().ok
    if done.new is not None:
        nodes = list(fresh.nodes(fresh.snapshot(done.new)))
        assert all(n.type in (NodeType.DIR, NodeType.FILE) for n in nodes)


def test_repair_snapshots_needs_an_intact_index(fx: Fixture) -> None:
    fx.flip_index()
    with pytest.raises(IntegrityError, match="index") as caught:
        fx.open().repair_snapshots()
    assert "repair index" in (caught.value.hint or "")


def test_repair_snapshots_forget_removes_an_unreadable_snapshot(fx: Fixture) -> None:
    key = SNAPSHOTS_PREFIX + fx.first.id
    fx.store.put(key, fx.store.get(key)[:-3])
    repo = fx.open()
    assert not repo.check().ok
    (kept,) = repo.repair_snapshots()
    assert kept.unreadable and not kept.forgotten and fx.store.exists(key)
    (gone,) = repo.repair_snapshots(forget=True)
    assert gone.original == fx.first.id and not fx.store.exists(key)
    assert repo.check().ok


def invoke(*args: str) -> Any:
    return runner.invoke(
        app, ["repo", "repair", *args], env={"HAPROTECT_PASSWORD": "pw"}, catch_exceptions=False
    )


def test_the_cli_repairs_index_then_snapshots(fx: Fixture) -> None:
    repo = fx.open()
    fx.drop_pack_of(repo, fx.victim_chunks(repo)[-1])
    fx.flip_index()
    url = str(fx.path)
    refused = invoke("snapshots", url)
    assert refused.exit_code == 7 and "repair index" in refused.output
    dry = invoke("index", url, "--dry-run")
    assert dry.exit_code == 0 and "would write 1 index blob" in dry.output
    result = invoke("index", url, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout.splitlines()[-1])
    assert body["command"] == "repair index" and body["changed"] and body["added"]
    assert "the index is whole" in invoke("index", url).output
    result = invoke("snapshots", url, "--forget")
    assert result.exit_code == 0, result.output
    assert "content lost" in result.output and "repaired 2 snapshots" in result.output
    check = runner.invoke(app, ["repo", "check", url], env={"HAPROTECT_PASSWORD": "pw"})
    assert check.exit_code == 0, check.output
    listing = json.loads(
        runner.invoke(
            app, ["repo", "snapshots", url, "--json"], env={"HAPROTECT_PASSWORD": "pw"}
        ).stdout.splitlines()[-1]
    )
    repaired = [s for s in listing["snapshots"] if REPAIRED_TAG in s["tags"]]
    assert {s["metadata"][REPAIRED_FROM] for s in repaired} == {fx.second.id, fx.third.id}


def _damage_pack_of(fx: Fixture, repo: Repository, chunk: bytes, how: str) -> str:
    where = repo.index.lookup(chunk)
    assert where is not None
    data = bytearray(fx.store.get(where.pack.key))
    if how == "cut-trailer":
        del data[-1:]
    else:
        data[where.offset + where.length // 2] ^= 0x08
    fx.store.put(where.pack.key, bytes(data))
    return where.pack.id


def test_a_pack_whose_trailer_is_cut_is_salvaged_whole(fx: Fixture) -> None:
    repo = fx.open()
    pack_id = _damage_pack_of(fx, repo, fx.victim_chunks(repo)[0], "cut-trailer")
    report = repo.repair_index()
    saved, lost = report.salvaged[pack_id]
    assert saved > 0 and lost == 0, "every blob still verifies: none is lost"
    assert not fx.store.exists(f"data/{pack_id[:2]}/{pack_id}")
    assert fx.store.exists(f"data/{pack_id[:2]}/{pack_id}.damaged"), "set aside, not deleted"
    repo = fx.open()
    assert repo.check(read_data=True).ok
    restored = fx.restore(repo, fx.third.id, "out")
    assert (restored / "victim.bin").read_bytes() == fx.victim.read_bytes()


def test_read_data_finds_a_damaged_blob_and_salvages_the_rest_of_its_pack(fx: Fixture) -> None:
    repo = fx.open()
    pack_id = _damage_pack_of(fx, repo, fx.victim_chunks(repo)[0], "flip")
    assert not repo.repair_index().salvaged, "without reading data, the damage is not seen"
    report = repo.repair_index(read_data=True)
    saved, lost = report.salvaged[pack_id]
    assert lost == 1 and saved >= 0
    repaired = {r.original for r in fx.open().repair_snapshots(forget=True)}
    assert {fx.second.id, fx.third.id} <= repaired, "both snapshots with the victim"
    check = fx.open().check(read_data=True)
    assert check.ok, [f.message for f in check.errors]
    assert any(f.kind == "set-aside-pack" for f in check.findings)
