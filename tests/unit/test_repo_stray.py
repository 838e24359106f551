"""Stray and damaged files never block a repository: check names them, the rest skips them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from haprotect.repo import KdfParams, Repository
from haprotect.repo.errors import IntegrityError, PruneRefused, WrongPassphrase
from haprotect.repo.format.index import INDEX_PREFIX
from haprotect.repo.format.keyfile import KEYS_PREFIX
from haprotect.repo.format.snapshots import SNAPSHOTS_PREFIX
from haprotect.repo.lockfile import LOCKS_PREFIX
from haprotect.repo.maintenance.check import CheckReport, Finding, Severity
from haprotect.storage.local import LocalStore
from haprotect.testing.repo import MiB

KDF = KdfParams(n=1 << 10)


class Fixture:
    def __init__(self, tmp_path: Path) -> None:
        self.store = LocalStore(tmp_path / "repo")
        repo = Repository.init(self.store, "pw", kdf=KDF, pack_size=MiB)
        self.src = tmp_path / "src"
        self.src.mkdir()
        rng = random.Random(7)
        for i in range(4):
            (self.src / f"f{i}").write_bytes(rng.randbytes(300_000))
            self.last = repo.backup([self.src])
        self.tmp = tmp_path

    def open(self, passphrase: str = "pw") -> Repository:
        return Repository.open(self.store, passphrase)

    def flip(self, key: str, offset: int = 100) -> None:
        data = bytearray(self.store.get(key))
        data[offset % len(data)] ^= 0x01
        self.store.put(key, bytes(data))

    def restored_whole(self, repo: Repository, name: str = "out") -> bool:
        target = self.tmp / name
        repo.restore(repo.snapshots()[-1].id, target)
        inside = target / str(self.src).lstrip("/")
        return all(
            (inside / p.name).read_bytes() == p.read_bytes() for p in self.src.iterdir()
        ) and len(list(inside.iterdir())) == len(list(self.src.iterdir()))


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def findings(report: CheckReport, kind: str) -> list[Finding]:
    return [f for f in report.findings if f.kind == kind]


@pytest.mark.parametrize(
    "key",
    [
        INDEX_PREFIX + "junk.tmp",
        KEYS_PREFIX + "junk",
        SNAPSHOTS_PREFIX + "junk",
        LOCKS_PREFIX + "junk",
        "data/junk",
        "data/ab/junk",
        SNAPSHOTS_PREFIX + "0" * 63,
    ],
)
def test_a_stray_file_blocks_nothing_and_check_names_it(fx: Fixture, key: str) -> None:
    fx.store.put(key, b"garbage\n")
    repo = fx.open()
    assert len(repo.snapshots()) == 4
    assert fx.restored_whole(repo)
    (fx.src / "new").write_bytes(b"new file")
    repo.backup([fx.src])
    report = repo.check(read_data=True)
    assert report.ok, [f.message for f in report.errors]
    (stray,) = findings(report, "stray-file")
    assert stray.severity is Severity.WARNING and key in stray.message
    repo.prune()
    assert fx.store.exists(key), "haprotect never deletes what it did not write"


def test_a_flipped_byte_in_an_index_blob_still_restores_byte_for_byte(fx: Fixture) -> None:
    for name in sorted(b.key for b in fx.store.list(INDEX_PREFIX)):
        fx.flip(name)
    repo = fx.open()
    assert len(repo.index_damage) == 4
    assert len(repo.index) == 0, "a backup deduplicates against the index blobs only"
    assert fx.restored_whole(repo)
    report = repo.check(read_data=True)
    assert {f.kind for f in report.errors} == {"damaged-index", "missing-chunks"}
    assert all("repair index" in f.message for f in report.errors)


def test_a_backup_after_index_damage_stores_what_it_cannot_find_again(fx: Fixture) -> None:
    for name in sorted(b.key for b in fx.store.list(INDEX_PREFIX)):
        fx.flip(name)
    repo = fx.open()
    snapshot = repo.backup([fx.src])
    assert snapshot.stats.files_unchanged == 0, "its parent's chunks are in no index blob"
    fresh = fx.open()
    assert fresh.index.has_all(
        c for n in fresh.nodes(snapshot) for c in n.content if isinstance(c, bytes)
    )


def test_a_damaged_key_file_is_skipped_when_another_opens(fx: Fixture) -> None:
    repo = fx.open()
    second = repo.add_key("other", KDF)
    first = next(b.key for b in fx.store.list(KEYS_PREFIX) if b.key != second)
    fx.store.put(first, fx.store.get(first)[:50])
    assert fx.open("other").snapshots()
    with pytest.raises(WrongPassphrase) as caught:
        fx.open("pw")
    assert first in caught.value.message and "skipped 1" in caught.value.message
    with pytest.raises(WrongPassphrase) as wrong:
        fx.open("neither")
    assert first in wrong.value.message
    report = fx.open("other").check()
    (damaged,) = [f for f in report.findings if f.kind == "damaged-key"]
    assert first in damaged.message and damaged.severity is Severity.WARNING
    assert report.ok, "one key is lost, not any data: a warning, not an error"


def test_a_key_file_that_decrypts_wrongly_is_not_a_wrong_passphrase_of_the_other(
    fx: Fixture,
) -> None:
    repo = fx.open()
    repo.add_key("other", KDF)
    document = json.loads(fx.store.get(next(fx.store.list(KEYS_PREFIX)).key))
    bogus = KEYS_PREFIX + "f" * 64
    document["kdf"]["n"] = 3  # not a power of two: scrypt refuses it
    fx.store.put(bogus, json.dumps(document).encode())
    assert fx.open("pw").snapshots() and fx.open("other").snapshots()


def test_no_usable_key_file_is_not_called_a_wrong_passphrase(fx: Fixture) -> None:
    for info in list(fx.store.list(KEYS_PREFIX)):
        fx.store.put(info.key, b"{}")
    with pytest.raises(IntegrityError, match=r"no key file .* can be used"):
        fx.open()


def test_a_damaged_snapshot_is_skipped_by_listing_named_by_check_and_stops_prune(
    fx: Fixture,
) -> None:
    victim = fx.open().snapshots()[0]
    fx.flip(SNAPSHOTS_PREFIX + victim.id)
    repo = fx.open()
    assert victim.id not in {s.id for s in repo.snapshots()} and len(repo.snapshots()) == 3
    assert fx.restored_whole(repo)
    (damaged,) = repo.check().errors
    assert damaged.kind == "damaged-snapshot" and damaged.snapshots == (victim.id,)
    with pytest.raises(PruneRefused, match="deletes nothing"):
        repo.prune()


def test_an_unreadable_lock_blocks_nothing_and_check_reports_it(fx: Fixture) -> None:
    fx.store.put(LOCKS_PREFIX + "ab" * 32, b'{"version": 1, "exclusive": tr')
    repo = fx.open()
    repo.backup([fx.src])
    assert fx.restored_whole(repo)
    report = repo.check()
    assert report.ok
    (lock,) = findings(report, "stale-lock")
    assert lock.severity is Severity.INFO and "unreadable" in lock.message
    assert [s.id for s in repo.unlock()] == ["ab" * 32]


@pytest.mark.parametrize("deleted", ["one", "every"])
def test_a_deleted_index_blob_costs_a_restore_nothing(fx: Fixture, deleted: str) -> None:
    names = sorted(b.key for b in fx.store.list(INDEX_PREFIX))
    for name in names[:1] if deleted == "one" else names:
        fx.store.delete(name)
    repo = fx.open()
    assert fx.restored_whole(repo), "the packs' own trailers locate every chunk"
    assert not any(b.key for b in fx.store.list(INDEX_PREFIX) if b.key not in names), (
        "a restore writes no index"
    )


def test_packs_read_apart_from_the_index_never_hide_what_a_later_backup_adds(
    fx: Fixture,
) -> None:
    fx.store.delete(sorted(b.key for b in fx.store.list(INDEX_PREFIX))[0])
    repo = fx.open()
    assert fx.restored_whole(repo, "before"), "restored through the packs' own trailers"
    for name in ("new", "newer"):
        (fx.src / name).write_bytes(random.Random(name).randbytes(200_000))
        repo.backup([fx.src])  # the second reads the tree the first wrote, as its parent's
    assert fx.restored_whole(repo, "after"), "what these backups indexed is read at once"
