"""Passphrases, tampering, hostile snapshots and format versions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from haprotect.model.snapshot import Node, NodeType
from haprotect.repo import KdfParams, Repository
from haprotect.repo.errors import (
    IntegrityError,
    RepositoryExists,
    RepositoryNotFound,
    RestoreError,
    UnsupportedVersion,
    WrongPassphrase,
)
from haprotect.repo.format import keyfile as keyfile_module
from haprotect.storage.memory import MemoryStore
from haprotect.testing.repo import MiB, write_crafted_snapshot

FAST_KDF = KdfParams(n=1 << 10)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore("memory://vault/")


@pytest.fixture
def repo(store: MemoryStore) -> Repository:
    return Repository.init(store, "correct horse", kdf=FAST_KDF)


def test_wrong_passphrase_is_one_clear_line(repo: Repository, store: MemoryStore) -> None:
    with pytest.raises(WrongPassphrase) as caught:
        Repository.open(store, "battery staple")
    assert str(caught.value) == "wrong passphrase for repository memory://vault/"
    assert caught.value.exit_code == 7 and caught.value.hint


class WriteLog(MemoryStore):
    """A store that records every write and delete."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writes: list[str] = []

    def put(self, key: str, data: bytes) -> None:
        self.writes.append(key)
        super().put(key, data)

    def delete(self, key: str) -> None:
        self.writes.append(key)
        super().delete(key)


def test_a_background_unlock_raises_a_wrong_passphrase_before_writing(tmp_path: Path) -> None:
    store = WriteLog("memory://vault/")
    repo = Repository.init(store, "correct horse", kdf=FAST_KDF)
    (tmp_path / "f").write_text("data")
    first = repo.backup([tmp_path])
    store.writes.clear()
    opened = Repository.open(store, "battery staple", background=True)
    assert opened.id == repo.id, "the config is read at once"
    with pytest.raises(WrongPassphrase, match="memory://vault/"):
        opened.backup([tmp_path])
    for use in (
        opened.snapshots,
        lambda: opened.forget(first.id),
        opened.locks,
        opened.unlock,
        lambda: opened.lock(operation="x"),
    ):
        with pytest.raises(WrongPassphrase):
            use()
    assert store.writes == [], "not even a lock was taken"
    assert [s.id for s in repo.snapshots()] == [first.id]


def test_a_background_unlock_backs_up_while_deriving_the_key(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("data")
    first = Repository.open(store, "correct horse", background=True).backup([tmp_path])
    second = Repository.open(store, "correct horse", background=True).backup([tmp_path])
    assert (first.stats.files_new, second.stats.files_unchanged) == (1, 1)
    assert [s.id for s in repo.snapshots()] == [first.id, second.id]
    # every other use of a repository opened in the background waits for its key
    reopened = Repository.open(store, "correct horse", background=True)
    reopened.restore(second.id, tmp_path / "restored")
    assert (tmp_path / "restored" / str(tmp_path / "f").lstrip("/")).read_text() == "data"
    assert Repository.open(store, "correct horse", background=True).check(read_data=True).ok
    assert len(Repository.open(store, "correct horse", background=True).index) > 0


@pytest.mark.parametrize("params", [KdfParams(1 << 10, 8, 1), KdfParams(1 << 12, 4, 3)])
def test_key_derivation_is_standard_scrypt(params: KdfParams) -> None:
    """hashlib's scrypt (which lets other threads run) gives cryptography's bytes."""
    salt = os.urandom(16)
    expected = Scrypt(salt=salt, length=32, n=params.n, r=params.r, p=params.p).derive(
        "pässwörd".encode()
    )
    assert keyfile_module.derive("pässwörd", salt, params) == expected


def test_key_derivation_without_hashlibs_scrypt() -> None:
    """A Python without it, or an OpenSSL that refuses it (FIPS), derives the same key."""
    params, salt = KdfParams(1 << 10, 8, 1), os.urandom(16)
    expected = keyfile_module.derive("pw", salt, params)

    def refusing(*args: object, **kwargs: object) -> bytes:
        raise ValueError("unsupported")

    for replacement in (None, refusing):
        derived = keyfile_module.derive("pw", salt, params, hashlib_scrypt=replacement)
        assert derived == expected


def test_a_second_key_opens_the_same_repository(repo: Repository, store: MemoryStore) -> None:
    repo.add_key("second passphrase", FAST_KDF)
    assert Repository.open(store, "second passphrase").id == repo.id
    assert Repository.open(store, "correct horse").id == repo.id


def test_init_refuses_an_existing_repository_and_open_an_empty_store(
    repo: Repository, store: MemoryStore
) -> None:
    with pytest.raises(RepositoryExists):
        Repository.init(store, "x", kdf=FAST_KDF)
    with pytest.raises(RepositoryNotFound, match="no haprotect repository at memory://empty"):
        Repository.open(MemoryStore("memory://empty"), "x")


def test_key_files_hold_no_plain_secret(repo: Repository, store: MemoryStore) -> None:
    (name,) = [i.key for i in store.list("keys/")]
    document = json.loads(store.get(name))
    assert document["kdf"]["name"] == "scrypt"
    assert repo._key.data_key.hex() not in store.get(name).decode()


def test_newer_format_version_is_refused(repo: Repository, store: MemoryStore) -> None:
    config = json.loads(store.get("config"))
    config["version"] = 99
    store.put("config", json.dumps(config).encode())
    with pytest.raises(
        UnsupportedVersion, match="format version 99; this haprotect supports up to 1"
    ):
        Repository.open(store, "correct horse")


def test_modified_config_is_detected(repo: Repository, store: MemoryStore) -> None:
    config = json.loads(store.get("config"))
    config["pack_size"] = 1024
    store.put("config", json.dumps(config).encode())
    with pytest.raises(IntegrityError, match="config of repository memory://vault/ was modified"):
        Repository.open(store, "correct horse")


def test_tampered_pack_fails_authentication_naming_the_pack_and_file(
    repo: Repository, store: MemoryStore, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_bytes(os.urandom(3 * MiB))
    snapshot = repo.backup([src])
    data_packs = [
        (info.key, pack)
        for info in repo.list_packs()
        for pack in [repo.read_pack(info.key.rsplit("/", 1)[1])[0]]
        if pack.type == 0
    ]
    key, pack = data_packs[0]
    blob = bytearray(store.get(key))
    blob[100] ^= 0x01
    store.put(key, bytes(blob))
    reopened = Repository.open(store, "correct horse")
    stats = reopened.restore(snapshot.id, tmp_path / "out")
    ((lost,),) = [stats.lost]
    assert lost.path == str(src / "data").lstrip("/")
    assert {(r.pack, r.reason) for r in lost.ranges} == {
        (pack.id, "failed authentication: it was modified or corrupted")
    }
    assert not (tmp_path / "out" / lost.path).exists()
    with pytest.raises(IntegrityError, match=f"pack {pack.id} does not match its id"):
        reopened.read_pack(pack.id)


def test_packs_are_self_describing(repo: Repository, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_bytes(os.urandom(2 * MiB))
    repo.backup([src])
    listed = 0
    for info in repo.list_packs():
        pack, entries = repo.read_pack(info.key.rsplit("/", 1)[1])
        for entry in entries:
            location = repo.index.lookup(entry.id)
            assert location is not None and location.pack == pack
            assert location.offset == entry.offset
            assert len(repo.read_blob(entry.id)) == entry.raw_length
            listed += 1
    assert listed == len(repo.index)


def _node(path: str, kind: NodeType = NodeType.FILE, target: str | None = None) -> Node:
    return Node(path=path, type=kind, mode=0o644, target=target, mtime_ns=1, ctime_ns=1)


@pytest.mark.parametrize("path", ["../evil", "/etc/evil", "a/../../evil", "a//b", "./x", ""])
def test_restore_refuses_paths_that_escape(repo: Repository, tmp_path: Path, path: str) -> None:
    snapshot = write_crafted_snapshot(repo, [_node("a", NodeType.DIR), _node(path)])
    target = tmp_path / "target"
    with pytest.raises(RestoreError, match="would escape the target"):
        repo.restore(snapshot.id, target)
    assert not (tmp_path / "evil").exists()


def test_restore_never_writes_through_a_symlink_it_created(
    repo: Repository, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    nodes = [
        _node("link", NodeType.SYMLINK, target=str(outside)),
        _node("link/pwned"),
    ]
    snapshot = write_crafted_snapshot(repo, nodes)
    with pytest.raises(RestoreError, match="symlink or not a directory"):
        repo.restore(snapshot.id, tmp_path / "target")
    assert os.listdir(outside) == []
    assert os.path.islink(tmp_path / "target" / "link")


def test_restore_does_not_follow_a_symlink_already_in_the_target(
    repo: Repository, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "dir")
    snapshot = write_crafted_snapshot(repo, [_node("dir", NodeType.DIR), _node("dir/file")])
    repo.restore(snapshot.id, target)
    assert os.listdir(outside) == []
    assert (target / "dir").is_dir() and not (target / "dir").is_symlink()


def test_hard_link_to_an_outside_file_is_impossible(repo: Repository, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("do not touch")
    nodes = [
        Node(path="a", type=NodeType.FILE, mode=0o644, hardlink="1:1"),
        Node(path="b", type=NodeType.FILE, mode=0o777, hardlink="1:1"),
    ]
    snapshot = write_crafted_snapshot(repo, nodes)
    repo.restore(snapshot.id, tmp_path / "target")
    assert os.stat(tmp_path / "target" / "a").st_ino == os.stat(tmp_path / "target" / "b").st_ino
    assert secret.stat().st_mode & 0o777 != 0o777


def test_out_of_order_tree_is_refused(repo: Repository, tmp_path: Path) -> None:
    snapshot = write_crafted_snapshot(repo, [_node("b"), _node("a")])
    with pytest.raises(IntegrityError, match="out of order"):
        repo.restore(snapshot.id, tmp_path / "target")
