"""Compression levels by chunk size: lower for the small chunks it hardly helps."""

from __future__ import annotations

from typing import Any

import pytest
import zstandard

from haprotect.repo.blobs.blobsink import LOWER_LEVEL_MAX, LOWEST_LEVEL_MAX, Compressors

KiB = 1024


class NotingMaker:
    """Makes zstandard's compressors, noting the level of each."""

    def __init__(self) -> None:
        self.levels: list[int] = []

    def __call__(self, *, level: int) -> Any:
        self.levels.append(level)
        return zstandard.ZstdCompressor(level=level)


@pytest.mark.parametrize(
    ("level", "expected"),
    [(3, [1, 1, 2, 2, 3]), (9, [7, 7, 8, 8, 9]), (2, [1, 1, 1, 1, 2]), (1, [1, 1, 1, 1, 1])],
)
def test_small_chunks_are_compressed_lower(level: int, expected: list[int]) -> None:
    maker = NotingMaker()
    levels = maker.levels
    compressors = Compressors(level, maker)
    sizes = [1, LOWEST_LEVEL_MAX, LOWEST_LEVEL_MAX + 1, LOWER_LEVEL_MAX, LOWER_LEVEL_MAX + 1]
    chosen = [compressors(size) for size in sizes]
    by_compressor = {id(c): lvl for c, lvl in zip(dict.fromkeys(chosen), levels, strict=True)}
    assert [by_compressor[id(c)] for c in chosen] == expected
    assert len(levels) == 3, "one compressor per size class, made once"


@pytest.mark.parametrize("level", [0, -5])
def test_the_default_and_fast_levels_are_kept_for_every_size(level: int) -> None:
    maker = NotingMaker()
    compressors = Compressors(level, maker)
    for size in (100, 100 * KiB, 1000 * KiB):
        compressors(size)
    assert maker.levels == [level, level, level]


def test_a_chunk_compressed_lower_reads_back_the_same() -> None:
    data = b"a small configuration file\n" * 300
    assert len(data) <= LOWEST_LEVEL_MAX
    packed = Compressors(3)(len(data)).compress(data)
    assert len(packed) < len(data) and zstandard.decompress(packed) == data
