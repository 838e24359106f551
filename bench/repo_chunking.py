"""Delta size of a database file rewritten in place, per chunking strategy (run by hand).

    .venv/bin/python bench/repo_chunking.py [--size-mib 256] [--pages 100]

A file of random 8 KiB pages is backed up, then ``--pages`` pages at
scattered offsets are rewritten in place and it is backed up again. Prints
what the second backup added to the repository and the CPU time of the
first, for content-defined chunks of about 1 MiB (the default for other
files), of about 80 KiB, and fixed blocks of 64 KiB (the default for
page-structured files) and of 16 KiB.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from haprotect.repo import ChunkerParams, KdfParams, Repository
from haprotect.storage.memory import MemoryStore

KiB, MiB = 1024, 1024 * 1024
PAGE = 8 * KiB
NEVER = 1 << 62

STRATEGIES = {
    "cdc ~1.25 MiB": ChunkerParams(fixed_min_file=NEVER),
    "cdc ~80 KiB": ChunkerParams(
        min_size=16 * KiB, avg_size=64 * KiB, max_size=256 * KiB, fixed_min_file=NEVER
    ),
    "fixed 64 KiB": ChunkerParams(),
    "fixed 16 KiB": ChunkerParams(fixed_block=16 * KiB),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--pages", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "pgdata"
        src.mkdir()
        table = src / "16384"
        original = b"".join(rng.randbytes(MiB) for _ in range(args.size_mib))
        changes = [
            (p * PAGE, rng.randbytes(PAGE))
            for p in rng.sample(range(len(original) // PAGE), args.pages)
        ]
        print(f"{args.size_mib} MiB file, {args.pages} scattered 8 KiB pages rewritten")
        for name, params in STRATEGIES.items():
            table.write_bytes(original)
            repo = Repository.init(MemoryStore(), "x", kdf=KdfParams(n=1 << 10), chunker=params)
            cpu = time.process_time()
            first = repo.backup([src])
            cpu = time.process_time() - cpu
            with open(table, "r+b") as f:
                for offset, page in changes:
                    f.seek(offset)
                    f.write(page)
            second = repo.backup([src])
            added = second.stats.bytes_added
            print(
                f"{name:16s} delta {added / MiB:8.2f} MiB ({added / first.stats.bytes_added:6.1%})"
                f"  chunks {first.stats.chunks_added:6d}"
                f"  first backup {first.stats.bytes_total / cpu / 1e6:5.0f} MB per CPU-second"
            )


if __name__ == "__main__":
    main()
