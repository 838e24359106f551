"""Helpers for repository tests: awkward trees, tree comparison, crafted snapshots."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from haprotect.model.snapshot import Node, Snapshot
from haprotect.repo.blobs.blobsink import BlobSink
from haprotect.repo.blobs.chunker import StreamChunker
from haprotect.repo.blobs.uploader import Uploader
from haprotect.repo.format.snapshots import write_snapshot
from haprotect.repo.format.tree import encode_node
from haprotect.repo.repository import Repository

MiB = 1 << 20
SPARSE_SIZE = 1 << 30
ODD_NAME = b"odd-\xff\xfe-name"


def make_awkward_tree(root: Path) -> None:
    """Empty files and dirs, a 1 GiB sparse file, links, odd names, modes, times."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "empty").write_bytes(b"")
    (root / "empty-dir").mkdir()
    (root / "text.txt").write_text("hello\n" * 5000)
    (root / "ünïcødé-日本語.txt").write_text("unicode name\n")
    os.makedirs(os.path.join(os.fsencode(root), ODD_NAME, b"inner\xe9"))
    (Path(os.fsdecode(os.path.join(os.fsencode(root), ODD_NAME, b"inner\xe9"))) / "f").write_bytes(
        os.urandom(3000)
    )
    with open(root / "sparse.img", "wb") as f:
        f.truncate(SPARSE_SIZE)
        for offset in (0, 300 * MiB, SPARSE_SIZE - MiB):
            f.seek(offset)
            f.write(os.urandom(MiB))
    (root / "random.bin").write_bytes(os.urandom(3 * MiB + 17))
    os.link(root / "random.bin", root / "hardlink.bin")
    os.symlink("text.txt", root / "link-to-text")
    os.symlink("/nonexistent/target", root / "dangling")
    os.mkfifo(root / "fifo")
    (root / "exec.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "exec.sh", 0o4755)
    os.chmod(root / "text.txt", 0o640)
    readonly = root / "readonly"
    readonly.mkdir()
    (readonly / "inside").write_text("x")
    os.utime(root / "text.txt", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.chmod(readonly, 0o555)
    os.utime(readonly, ns=(1_500_000_000_000_000_001, 1_500_000_000_000_000_001))


@dataclass(frozen=True, slots=True)
class Seen:
    """What a comparison of two trees looks at for one object (hard links by group, not inode)."""

    kind: int
    mode: int
    size: int
    mtime_ns: int
    digest: str
    target: bytes | None
    link_group: int


def describe(root: Path) -> dict[bytes, Seen]:
    """What matters of every object under ``root``, by relative path."""
    out: dict[bytes, Seen] = {}
    groups: dict[tuple[int, int], int] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest, target, group = "", None, 0
            if stat.S_ISREG(st.st_mode):
                digest = _digest(path)
                if st.st_nlink > 1:
                    group = groups.setdefault((st.st_dev, st.st_ino), len(groups) + 1)
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
            mtime = 0 if stat.S_ISLNK(st.st_mode) else st.st_mtime_ns
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            out[os.path.relpath(path, base)] = Seen(
                stat.S_IFMT(st.st_mode),
                stat.S_IMODE(st.st_mode),
                size,
                mtime,
                digest,
                target,
                group,
            )
    return out


def _digest(path: bytes) -> str:
    """A hash of the content that is the same whether zeros are holes or data.

    Only the 1 MiB blocks that hold data are read, so a 1 GiB sparse file is
    cheap; blocks of zeros are left out.
    """
    h = hashlib.blake2b()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        h.update(str(size).encode())
        blocks: set[int] = set()
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            blocks.update(range(start // MiB, (end + MiB - 1) // MiB))
            pos = end
        for block in sorted(blocks):
            data = os.pread(fd, MiB, block * MiB)
            if data.count(0) != len(data):
                h.update(block.to_bytes(8, "little") + data)
    finally:
        os.close(fd)
    return h.hexdigest()


def write_crafted_snapshot(repo: Repository, nodes: Iterable[Node]) -> Snapshot:
    """Store a snapshot whose tree is exactly ``nodes`` (to test hostile input)."""
    key = repo._key
    uploader = Uploader(repo.store, key)
    sink = BlobSink(
        key,
        repo.index,
        uploader,
        pack_size=repo.config.pack_size,
        max_blob=4 * MiB,
        level=3,
    )
    writer = sink.new_tree_writer()
    chunker = StreamChunker(repo.config.chunker, key.chunker_seed)
    tree: list[str] = []
    for node in nodes:
        tree.extend(sink.store_tree(writer, c).hex() for c in chunker.feed(encode_node(node)))
    tree.extend(sink.store_tree(writer, c).hex() for c in chunker.finish())
    sink.flush(writer)
    uploader.finish(repo.index)
    shell = Snapshot(
        id="",
        time=datetime.now(UTC),
        host="crafted",
        username="test",
        paths=("/",),
        tree=tuple(tree),
    )
    return write_snapshot(repo.store, key, shell)
