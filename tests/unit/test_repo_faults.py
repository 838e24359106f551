"""The fault campaign: one kind of damage at a time, through the commands users run.

For each kind of damage to a copy of a pristine repository (flipped bytes,
truncation, deletion and junk, in packs, index, snapshots, keys and locks):

* ``repo check --read-data`` names the damaged object;
* ``repo restore`` of every snapshot restores every intact file byte for byte
  and names every lost one (what is intact is worked out from the bytes, in
  tests/repo_faults.py, not asked of the code under test);
* ``repo repair index`` then ``repo repair snapshots --forget`` leave a
  repository that ``check --read-data`` passes and that restores every file
  that was intact, byte for byte.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.repo_faults import (
    Pristine,
    Span,
    Survey,
    exists,
    file_digest,
    read_pristine,
    restored_path,
)
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.repo import KdfParams, Repository
from haprotect.repo.format.config import ChunkerParams, KiB
from haprotect.repo.lock import Locker
from haprotect.storage.local import LocalStore
from haprotect.testing.repo import MiB

pytestmark = pytest.mark.faults

PASSWORD = "campaign"
SMALL_CHUNKS = ChunkerParams(min_size=64 * KiB, avg_size=128 * KiB, max_size=256 * KiB)
"""Whatever the repository's random chunker seed, big.bin has at least 20 chunks."""
PARTIAL, REFUSED, FAILED = 10, 7, 11


def invoke(*args: str) -> Any:
    env = {"HAPROTECT_PASSWORD": PASSWORD, "COLUMNS": "250"}
    return CliRunner().invoke(app, ["repo", *args], env=env, catch_exceptions=False)


def _write_tree(root: Path, rng: random.Random) -> None:
    for folder in ("etc", "var/lib/db", "var/lib/db/base", "srv/www"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for n in range(12):
        (root / "etc" / f"conf{n}.txt").write_text(f"setting{n} = {rng.random()}\n" * (50 + n))
    for n in range(6):
        (root / "var/lib/db/base" / f"rel{n}").write_bytes(rng.randbytes(180_000 + 7 * n))
    (root / "var/lib/db/big.bin").write_bytes(rng.randbytes(5 * MiB + 123))
    (root / "srv/www/index.html").write_text("<html>shop</html>\n" * 300)
    (root / "srv/www/logo.png").write_bytes(rng.randbytes(40_000))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    base = tmp_path_factory.mktemp("pristine")
    path, src = base / "repo", base / "src"
    rng = random.Random(20261207)
    _write_tree(src, rng)
    store = LocalStore(path)
    repo = Repository.init(
        store, PASSWORD, kdf=KdfParams(n=1 << 10), chunker=SMALL_CHUNKS, pack_size=512 * 1024
    )
    repo.add_key(PASSWORD, KdfParams(n=1 << 10))
    repo.backup([src])
    (src / "etc/conf3.txt").write_text("changed\n" * 80)
    (src / "var/lib/db/base/rel9").write_bytes(rng.randbytes(300_000))
    repo.backup([src])
    return read_pristine(path, PASSWORD)


# -- the kinds of damage ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    """What check must say: each of ``names`` appears; ``error``: it exits 7 (None: 0 or 7)."""

    names: tuple[str, ...]
    error: bool | None = True


class Case:
    def __init__(self, repo: Path, pristine: Pristine) -> None:
        self.repo = repo
        self.pristine = pristine

    def file(self, key: str) -> Path:
        return self.repo / key

    def data(self, suffix: str, n: int = 0, snapshot: int = 0) -> Span:
        (truth,) = [
            f for p, f in self.pristine.snapshots[snapshot].files.items() if p.endswith(suffix)
        ]
        return truth.data[n]

    def tree(self, n: int = 0, snapshot: int = 0) -> Span:
        return self.pristine.snapshots[snapshot].tree[n]

    def keys(self, prefix: str) -> list[str]:
        folder = self.repo / prefix
        return sorted(f"{prefix}/{p.name}" for p in folder.iterdir() if p.is_file())

    def snapshot_key(self, n: int) -> str:
        return f"snapshots/{self.pristine.snapshots[n].snapshot.id}"

    def flip(self, key: str, offset: int, mask: int = 0x01) -> None:
        path = self.file(key)
        data = bytearray(path.read_bytes())
        data[offset] ^= mask
        path.write_bytes(bytes(data))

    def zero(self, key: str, start: int, end: int) -> None:
        path = self.file(key)
        data = bytearray(path.read_bytes())
        data[start:end] = bytes(len(data[start:end]))
        path.write_bytes(bytes(data))

    def truncate(self, key: str, size: int) -> None:
        os.truncate(self.file(key), size)

    def size(self, key: str) -> int:
        return self.file(key).stat().st_size

    def put(self, key: str, data: bytes) -> None:
        path = self.file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        self.file(key).unlink()


def pack_name(key: str) -> str:
    return key.rsplit("/", 1)[-1][:8]


Damage = Callable[[Case], Expect]
KINDS: dict[str, Damage] = {}


def kind(name: str) -> Callable[[Damage], Damage]:
    def register(damage: Damage) -> Damage:
        assert name not in KINDS
        KINDS[name] = damage
        return damage

    return register


# Packs: one blob, several, the header, the salt, the trailer, the whole pack.
for where, (suffix, n) in {
    "small-file": ("conf5.txt", 0),
    "large-file-first": ("big.bin", 0),
    "large-file-middle": ("big.bin", 8),
    "shared-by-both": ("rel2", 0),
    "only-in-second": ("rel9", 0),
}.items():
    for part, offset in {
        "nonce": lambda s: s.start + 3,
        "body": lambda s: (s.start + s.end) // 2,
        "tag": lambda s: s.end - 1,
    }.items():

        def flip_blob(c: Case, suffix: str = suffix, n: int = n, offset: Any = offset) -> Expect:
            span = c.data(suffix, n, snapshot=1)
            c.flip(span.key, offset(span))
            return Expect((pack_name(span.key),))

        kind(f"flip-{part}-of-{where}-blob")(flip_blob)


@kind("zero-4k-sector-in-pack")
def _sector(c: Case) -> Expect:
    span = c.data("big.bin", 5)
    c.zero(span.key, span.start + 100, span.start + 100 + 4096)
    return Expect((pack_name(span.key),))


@kind("flip-pack-magic")
def _magic(c: Case) -> Expect:
    span = c.data("conf1.txt")
    c.flip(span.key, 0)
    return Expect((pack_name(span.key),))


@kind("flip-pack-version")
def _version(c: Case) -> Expect:
    span = c.data("conf1.txt")
    c.flip(span.key, 4)
    return Expect((pack_name(span.key),))


@kind("flip-pack-salt")
def _salt(c: Case) -> Expect:
    span = c.data("rel1")
    c.flip(span.key, 20)
    return Expect((pack_name(span.key),))


@kind("flip-pack-trailer")
def _trailer(c: Case) -> Expect:
    span = c.data("rel3")
    c.flip(span.key, c.size(span.key) - 30)
    return Expect((pack_name(span.key),))


@kind("flip-pack-trailer-length")
def _trailer_length(c: Case) -> Expect:
    span = c.data("rel3")
    c.flip(span.key, c.size(span.key) - 2)
    return Expect((pack_name(span.key),))


@kind("truncate-pack-by-one-byte")
def _truncate_one(c: Case) -> Expect:
    span = c.data("rel4")
    c.truncate(span.key, c.size(span.key) - 1)
    return Expect((pack_name(span.key),))


@kind("truncate-pack-to-half")
def _truncate_half(c: Case) -> Expect:
    span = c.data("big.bin", 5)
    c.truncate(span.key, c.size(span.key) // 2)
    return Expect((pack_name(span.key),))


@kind("truncate-pack-to-header")
def _truncate_header(c: Case) -> Expect:
    span = c.data("conf7.txt")
    c.truncate(span.key, 40)
    return Expect((pack_name(span.key),))


@kind("truncate-pack-to-nothing")
def _truncate_empty(c: Case) -> Expect:
    span = c.data("index.html")
    c.truncate(span.key, 0)
    return Expect((pack_name(span.key),))


@kind("delete-pack")
def _delete_pack(c: Case) -> Expect:
    span = c.data("logo.png")
    c.delete(span.key)
    return Expect((pack_name(span.key),))


@kind("delete-two-packs")
def _delete_two(c: Case) -> Expect:
    first, second = c.data("big.bin", 0), c.data("rel0")
    keys = {first.key, second.key}
    for key in keys:
        c.delete(key)
    return Expect(tuple(pack_name(k) for k in keys))


@kind("pack-replaced-by-another")
def _replaced(c: Case) -> Expect:
    victim, other = c.data("rel5"), c.data("big.bin", 10)
    assert victim.key != other.key
    c.put(victim.key, c.file(other.key).read_bytes())
    return Expect((pack_name(victim.key),))


@kind("junk-appended-to-pack")
def _appended(c: Case) -> Expect:
    span = c.data("conf2.txt")
    with open(c.file(span.key), "ab") as f:
        f.write(b"junk" * 100)
    return Expect((pack_name(span.key),))


@kind("junk-prepended-to-pack")
def _prepended(c: Case) -> Expect:
    span = c.data("conf2.txt")
    c.put(span.key, b"X" * 16 + c.file(span.key).read_bytes())
    return Expect((pack_name(span.key),))


@kind("pack-moved-to-wrong-folder")
def _moved(c: Case) -> Expect:
    span = c.data("rel2")
    name = span.key.rsplit("/", 1)[-1]
    wrong = "00" if not name.startswith("00") else "ff"
    c.put(f"data/{wrong}/{name}", c.file(span.key).read_bytes())
    c.delete(span.key)
    return Expect((pack_name(span.key),))


@kind("blobs-of-two-packs-flipped")
def _two_blobs(c: Case) -> Expect:
    first, second = c.data("conf0.txt"), c.data("big.bin", 12)
    assert first.key != second.key
    c.flip(first.key, first.start + 50)
    c.flip(second.key, second.end - 5)
    return Expect((pack_name(first.key), pack_name(second.key)))


@kind("flip-tree-blob")
def _tree_flip(c: Case) -> Expect:
    span = c.tree(0, snapshot=1)
    c.flip(span.key, (span.start + span.end) // 2)
    return Expect((pack_name(span.key),))


@kind("delete-tree-pack")
def _tree_delete(c: Case) -> Expect:
    span = c.tree(0, snapshot=0)
    c.delete(span.key)
    return Expect((pack_name(span.key),))


@kind("truncate-tree-pack")
def _tree_truncate(c: Case) -> Expect:
    span = c.tree(0, snapshot=1)
    c.truncate(span.key, span.start + 10)
    return Expect((pack_name(span.key),))


# The index.
def _index(c: Case) -> str:
    return c.keys("index")[0]


@kind("flip-index-body")
def _index_body(c: Case) -> Expect:
    key = _index(c)
    c.flip(key, c.size(key) // 2)
    return Expect((pack_name(key),))


@kind("flip-index-magic")
def _index_magic(c: Case) -> Expect:
    key = _index(c)
    c.flip(key, 1)
    return Expect((pack_name(key),))


@kind("flip-index-kind")
def _index_kind(c: Case) -> Expect:
    key = _index(c)
    c.flip(key, 5, 0x03)
    return Expect((pack_name(key),))


@kind("truncate-index")
def _index_truncate(c: Case) -> Expect:
    key = _index(c)
    c.truncate(key, c.size(key) // 3)
    return Expect((pack_name(key),))


@kind("empty-index")
def _index_empty(c: Case) -> Expect:
    key = _index(c)
    c.truncate(key, 0)
    return Expect((pack_name(key),))


@kind("delete-index")
def _index_delete(c: Case) -> Expect:
    c.delete(_index(c))
    return Expect(("no index",), error=None)


@kind("delete-every-index")
def _index_delete_all(c: Case) -> Expect:
    for key in c.keys("index"):
        c.delete(key)
    return Expect(("no index",), error=None)


@kind("index-replaced-by-snapshot")
def _index_swapped(c: Case) -> Expect:
    key = _index(c)
    c.put(key, c.file(c.snapshot_key(0)).read_bytes())
    return Expect((pack_name(key),))


@kind("index-copied-under-wrong-name")
def _index_copied(c: Case) -> Expect:
    key = _index(c)
    c.put("index/" + "ab" * 32, c.file(key).read_bytes())
    return Expect(("abababab",), error=None)


@kind("junk-tmp-in-index")
def _index_junk(c: Case) -> Expect:
    c.put("index/junk.tmp", b"partial write")
    return Expect(("junk.tmp",), error=None)


# Snapshots.
@kind("flip-snapshot-body")
def _snapshot_flip(c: Case) -> Expect:
    key = c.snapshot_key(0)
    c.flip(key, c.size(key) - 20)
    return Expect((pack_name(key),))


@kind("truncate-snapshot")
def _snapshot_truncate(c: Case) -> Expect:
    key = c.snapshot_key(0)
    c.truncate(key, c.size(key) // 2)
    return Expect((pack_name(key),))


@kind("empty-snapshot")
def _snapshot_empty(c: Case) -> Expect:
    key = c.snapshot_key(1)
    c.truncate(key, 0)
    return Expect((pack_name(key),))


@kind("snapshot-copied-under-wrong-name")
def _snapshot_copied(c: Case) -> Expect:
    c.put("snapshots/" + "cd" * 32, c.file(c.snapshot_key(0)).read_bytes())
    return Expect(("cdcdcdcd",))


@kind("junk-in-snapshots")
def _snapshot_junk(c: Case) -> Expect:
    c.put("snapshots/junk", b"not a snapshot")
    return Expect(("junk",), error=None)


@kind("folder-in-snapshots")
def _snapshot_folder(c: Case) -> Expect:
    c.put("snapshots/stray.d/inside", b"left by hand")
    return Expect(("stray.d",), error=None)


# Key files (two keys open this repository: one of them may be damaged). A key
# file damaged inside its encrypted part cannot be told from another
# passphrase's key file without that passphrase: check cannot name it, and
# restores go on through the other key.
@kind("junk-in-keys")
def _key_junk(c: Case) -> Expect:
    c.put("keys/junk", b"{not json")
    return Expect(("junk",), error=None)


@kind("flip-one-key-file")
def _key_flip(c: Case) -> Expect:
    key = c.keys("keys")[0]
    text = c.file(key).read_text()
    data = json.loads(text)
    payload = bytearray(data["data"].encode())
    payload[10] = ord("A") if payload[10] != ord("A") else ord("B")
    data["data"] = payload.decode()
    c.put(key, json.dumps(data).encode())
    return Expect((), error=False)


@kind("truncate-one-key-file")
def _key_truncate(c: Case) -> Expect:
    key = c.keys("keys")[1]
    c.truncate(key, c.size(key) // 2)
    return Expect((pack_name(key),), error=None)


@kind("empty-key-file")
def _key_empty(c: Case) -> Expect:
    key = c.keys("keys")[0]
    c.truncate(key, 0)
    return Expect((pack_name(key),), error=None)


@kind("key-file-of-another-repository")
def _key_foreign(c: Case) -> Expect:
    other = Repository.init(LocalStore(c.repo.parent / "other"), "x", kdf=KdfParams(n=1 << 10))
    del other
    (foreign,) = sorted((c.repo.parent / "other" / "keys").iterdir())
    c.put("keys/" + foreign.name, foreign.read_bytes())
    return Expect((), error=False)


# Locks.
@kind("junk-lock")
def _lock_junk(c: Case) -> Expect:
    c.put("locks/junk", b"\x00\x01garbage")
    return Expect(("junk",), error=None)


@kind("lock-not-json")
def _lock_text(c: Case) -> Expect:
    c.put("locks/" + "1f" * 32, b"{half a lock")
    return Expect(("1f1f1f1f",), error=None)


@kind("empty-lock")
def _lock_empty(c: Case) -> Expect:
    c.put("locks/" + "2e" * 32, b"")
    return Expect(("2e2e2e2e",), error=None)


@kind("stale-lock-of-dead-process")
def _lock_stale(c: Case) -> Expect:
    held = Locker(LocalStore(c.repo)).acquire(exclusive=True, operation="prune")
    (key,) = c.keys("locks")
    data = json.loads(c.file(key).read_text())
    held.release()
    data["pid"] = 2**22 + 17
    c.put(key, json.dumps(data).encode())
    return Expect((pack_name(key),), error=None)


# Junk elsewhere.
@kind("junk-in-data-subfolder")
def _data_junk(c: Case) -> Expect:
    c.put("data/ab/junk.tmp", b"left by an interrupted write")
    return Expect(("junk.tmp",), error=None)


@kind("junk-at-data-top")
def _data_top(c: Case) -> Expect:
    c.put("data/README", b"hello")
    return Expect(("README",), error=None)


@kind("pack-named-like-a-pack-holding-junk")
def _fake_pack(c: Case) -> Expect:
    c.put("data/ee/" + "ee" * 32, os.urandom(4000))
    return Expect(("eeeeeeee",), error=None)


@kind("junk-in-a-new-data-folder")
def _data_folder(c: Case) -> Expect:
    c.put("data/zz/notes", b"hello")
    return Expect(("data/zz/notes",), error=None)


@kind("snapshot-replaced-by-index")
def _snapshot_swapped(c: Case) -> Expect:
    key = c.snapshot_key(0)
    c.put(key, c.file(_index(c)).read_bytes())
    return Expect((pack_name(key),))


# Several at once.
@kind("damaged-pack-and-damaged-index")
def _pack_and_index(c: Case) -> Expect:
    span = c.data("rel0")
    c.flip(span.key, span.start + 7)
    key = _index(c)
    c.flip(key, c.size(key) - 3)
    return Expect((pack_name(span.key), pack_name(key)))


@kind("junk-everywhere")
def _junk_everywhere(c: Case) -> Expect:
    for folder in ("index", "keys", "snapshots", "locks", "data/aa"):
        c.put(f"{folder}/junk.tmp", b"junk")
    return Expect(("junk.tmp",), error=None)


def test_the_campaign_has_at_least_sixty_kinds() -> None:
    assert len(KINDS) >= 60, len(KINDS)


# -- the campaign ---------------------------------------------------------------


def _output(result: Any) -> str:
    return str(result.output)


def _restore(repo: Path, snapshot_id: str, target: Path) -> Any:
    return invoke("restore", str(repo), snapshot_id, "--target", str(target), "--json")


@pytest.mark.parametrize("name", sorted(KINDS))
def test_damage(name: str, pristine: Pristine, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(pristine.path, repo)
    expect = KINDS[name](Case(repo, pristine))
    survey = Survey(pristine, repo)

    check = invoke("check", str(repo), "--read-data", "--json")
    said = _output(check)
    assert "Traceback" not in said
    if expect.error is True:
        assert check.exit_code == REFUSED, said
    elif expect.error is False:
        assert check.exit_code == 0, said
    else:
        assert check.exit_code in (0, REFUSED), said
    for needle in expect.names:
        assert needle in said, f"check does not name {needle}: {said}"

    intact: dict[str, set[str]] = {}
    for n, truth in enumerate(pristine.snapshots):
        snapshot_id = truth.snapshot.id
        target = tmp_path / f"restore{n}"
        result = _restore(repo, snapshot_id, target)
        said = _output(result)
        assert "Traceback" not in said
        if not survey.intact(Span(f"snapshots/{snapshot_id}", 0, 1 << 40)):
            assert result.exit_code == REFUSED and snapshot_id[:8] in said, said
            continue
        lost = survey.lost(truth)
        intact[snapshot_id] = set(truth.files) - lost
        # a restore that lost every file failed: nothing was restored
        failed = FAILED if not intact[snapshot_id] else PARTIAL
        assert result.exit_code == (failed if lost else 0), said
        for path in sorted(intact[snapshot_id]):
            restored = restored_path(target, path)
            assert file_digest(restored) == truth.files[path].digest, path
        unlisted = survey.unlisted(truth)
        if unlisted:
            assert "tree chunk" in said, f"lost tree records are not reported: {said}"
        for path in sorted(lost - unlisted):
            assert path in said, f"{path} is lost and not named: {said}"
        for path in sorted(lost):
            restored = restored_path(target, path)
            assert not exists(restored) or file_digest(restored) == truth.files[path].digest, (
                f"{path} holds a partial file under its final name"
            )

    for command in (("repair", "index", "--read-data"), ("repair", "snapshots", "--forget")):
        result = invoke(*command, str(repo))
        assert result.exit_code == 0, _output(result)
    check = invoke("check", str(repo), "--read-data", "--json")
    assert check.exit_code == 0, _output(check)
    listed = invoke("snapshots", str(repo), "--json")
    assert listed.exit_code == 0, _output(listed)
    snapshots = json.loads(listed.stdout.splitlines()[-1])["snapshots"]
    for n, entry in enumerate(snapshots):
        original = entry.get("metadata", {}).get("repaired_from") or entry["id"]
        truth = next((t for t in pristine.snapshots if t.snapshot.id == original), None)
        assert truth is not None, entry
        target = tmp_path / f"repaired{n}"
        result = _restore(repo, entry["id"], target)
        assert result.exit_code == 0, _output(result)
        for path in sorted(intact.get(original, set())):
            assert file_digest(restored_path(target, path)) == truth.files[path].digest, path
