"""Throughput of backup and restore on generated mixed data (run by hand).

    .venv/bin/python bench/repo_throughput.py [--size-mib 1024] [--dir /tmp/hp-bench]

Half the bytes are random (incompressible), half text-like (zstd shrinks it
about 4x), in files from 4 KiB to 256 MiB. Reports MB/s of the first backup
(everything new), the second (files cache), a backup without parent
(everything read, all deduplicated) and a restore.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from pathlib import Path

from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore


def text_block(rng: random.Random, size: int) -> bytes:
    words = [rng.randbytes(rng.randint(2, 6)).hex().encode() for _ in range(4000)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=2000)) + b"\n"
    return bytes(out[:size])


def generate(root: Path, total: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    text = text_block(rng, 64 << 20)
    sizes = [256 << 20, 128 << 20, 64 << 20] + [8 << 20] * 16 + [1 << 20] * 64
    written, n = 0, 0
    while written < total:
        size = sizes[n % len(sizes)] if n < len(sizes) else rng.choice([4096, 16384, 65536])
        size = min(size, total - written)
        d = root / f"d{n % 17}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"f{n}", "wb") as f:
            left = size
            while left:
                piece = min(left, 8 << 20)
                if n % 2:
                    f.write(os.urandom(piece))
                else:
                    start = rng.randrange(0, len(text) - piece + 1)
                    f.write(text[start : start + piece])
                left -= piece
        written += size
        n += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", default="/tmp/hp-bench")
    args = parser.parse_args()
    base = Path(args.dir)
    data, repo_dir, out = base / "data", base / "repo", base / "restore"
    total = args.size_mib << 20
    if not data.exists():
        generate(data, total)
    for p in (repo_dir, out):
        shutil.rmtree(p, ignore_errors=True)
    subprocess_sync()
    repo = Repository.init(LocalStore(repo_dir), "bench", kdf=KdfParams(n=1 << 14))

    def timed(label: str, fn: object) -> None:
        t = time.perf_counter()
        result = fn()  # type: ignore[operator]
        dt = time.perf_counter() - t
        print(f"{label:28s} {dt:7.2f} s  {total / dt / 1e6:8.0f} MB/s  {result}")

    timed("backup (all new)", lambda: repo.backup([data]).stats)
    timed("backup (files cache)", lambda: repo.backup([data]).stats)
    timed("backup (no parent, dedup)", lambda: repo.backup([data], use_parent=False).stats)
    latest = repo.snapshots()[-1]
    timed("restore", lambda: repo.restore(latest.id, out))


def subprocess_sync() -> None:
    os.sync()


if __name__ == "__main__":
    main()
