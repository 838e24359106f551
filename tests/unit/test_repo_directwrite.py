"""The O_DIRECT writer of restores: whole aligned blocks, gathered extents, holes."""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from haprotect.repo.restore.directwrite import BLOCK, EXTENT_MAX, DirectWriter, PartialBlock


@dataclass(eq=False)
class _Target:
    path: Path
    size: int
    fd: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)
    partial: dict[int, PartialBlock] = field(default_factory=dict)


def _open(target: _Target) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    try:
        target.fd = os.open(target.path, flags | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        target.fd = os.open(target.path, flags, 0o600)
    return target.fd


def _layout(rng: random.Random, size: int) -> list[tuple[int, bytes | int]]:
    """(offset, chunk bytes or hole length) covering ``size`` bytes."""
    pieces: list[tuple[int, bytes | int]] = []
    at = 0
    while at < size:
        length = min(size - at, rng.choice([1, 17, BLOCK - 1, BLOCK, 5000, 70_000, 300_001]))
        hole = rng.random() < 0.15
        pieces.append((at, length if hole else rng.randbytes(length)))
        at += length
    return pieces


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_runs_in_any_order_give_the_exact_file_with_few_writes(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    size = 3 * 1024 * 1024 + 1234
    target = _Target(tmp_path / "file", size)
    failures: list[OSError] = []
    writes = 0

    def counting_pwrite(fd: int, data: bytes | memoryview, offset: int) -> int:
        nonlocal writes
        writes += 1
        return os.pwrite(fd, data, offset)

    writer: DirectWriter[_Target] = DirectWriter(
        _open, lambda _, exc: failures.append(exc), counting_pwrite
    )
    layout = _layout(rng, size)
    expected = bytearray(size)
    for at, piece in layout:
        if isinstance(piece, bytes):
            expected[at : at + len(piece)] = piece
    # holes are told first (the scheduling thread does), then runs of
    # consecutive chunks come in any order
    for at, piece in layout:
        if isinstance(piece, int):
            writer.hole(target, at, piece)
    writes = 0  # the runs' writes are counted
    runs: list[list[tuple[int, bytes]]] = [[]]
    for at, piece in layout:
        if isinstance(piece, int) or rng.random() < 0.1:
            runs.append([])
        if isinstance(piece, bytes):
            runs[-1].append((at, piece))
    runs = [run for run in runs if run]
    rng.shuffle(runs)
    for run in runs:
        for at, chunk in run:
            writer.append(target, chunk, at)
        writer.flush_extent()
    writer.flush(target)
    os.ftruncate(target.fd, size)
    os.close(target.fd)
    assert failures == []
    assert target.path.read_bytes() == bytes(expected)
    chunks = sum(isinstance(piece, bytes) for _, piece in layout)
    # one write for the middle of each run's extent and at most one per
    # block where runs or holes meet, instead of up to three per chunk
    holes = len(layout) - chunks
    assert writes <= 3 * len(runs) + 2 * holes
    assert writes < chunks


def test_a_chunk_larger_than_an_extent_is_written_alone(tmp_path: Path) -> None:
    size = EXTENT_MAX + 3 * BLOCK + 5
    target = _Target(tmp_path / "big", size)
    writer: DirectWriter[_Target] = DirectWriter(_open, lambda _, exc: pytest.fail(str(exc)))
    data = random.Random(9).randbytes(size - 7)
    writer.append(target, b"1234567", 0)
    writer.append(target, data, 7)
    writer.flush_extent()
    writer.flush(target)
    os.ftruncate(target.fd, size)
    os.close(target.fd)
    assert target.path.read_bytes() == b"1234567" + data


def test_a_failed_extent_write_is_reported_for_its_file(tmp_path: Path) -> None:
    target = _Target(tmp_path / "file", 3 * BLOCK)
    failed: list[tuple[_Target, OSError]] = []

    def read_only(file: _Target) -> int:
        file.fd = os.open(tmp_path / "file", os.O_RDONLY | os.O_CREAT, 0o600)
        return file.fd

    writer: DirectWriter[_Target] = DirectWriter(read_only, lambda f, e: failed.append((f, e)))
    writer.append(target, bytes(3 * BLOCK), 0)
    writer.flush_extent()
    os.close(target.fd)
    assert [f for f, _ in failed] == [target]
