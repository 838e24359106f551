"""Ending a base backup's WAL at its end position: the segment arithmetic and the trim."""

from __future__ import annotations

from pathlib import Path

import pytest

from haprotect.errors import ComponentError
from haprotect.movers.pgwal import end_at, segment_name

MIB = 1 << 20
SIZE = 1 * MIB  #: the smallest segment size initdb allows; the code reads it from the files


def segment(pg_wal: Path, timeline: int, segno: int, fill: int = 0xAB, suffix: str = "") -> Path:
    path = pg_wal / (segment_name(timeline, segno, SIZE) + suffix)
    path.write_bytes(bytes([fill]) * SIZE)
    return path


@pytest.fixture
def pg_wal(tmp_path: Path) -> Path:
    path = tmp_path / "pg_wal"
    path.mkdir()
    return path


def test_segment_names_follow_postgresql() -> None:
    assert segment_name(1, 3, 16 * MIB) == "000000010000000000000003"
    # 256 segments of 16 MiB per "xlogid": segment 256 is 0/100000000 -> 1/00000000
    assert segment_name(1, 256, 16 * MIB) == "000000010000000100000000"
    assert segment_name(2, 4097, MIB) == "000000020000000100000001"


def test_the_tail_after_the_end_is_zeroed_and_later_segments_go(pg_wal: Path) -> None:
    first, holding, later = (segment(pg_wal, 1, n) for n in (1, 2, 3))
    partial = segment(pg_wal, 1, 4, suffix=".partial")
    other_timeline = segment(pg_wal, 2, 3)
    history = pg_wal / "00000002.history"
    history.write_text("1\t0/3000000\tno recovery target specified\n")
    end = 2 * SIZE + 0x1234
    result = end_at(pg_wal, f"0/{end:X}", 1)
    data = holding.read_bytes()
    assert data[:0x1234] == bytes([0xAB]) * 0x1234  # before the end: untouched
    assert data[0x1234:] == bytes(SIZE - 0x1234)  # after it: zeroes
    assert result.cleared == SIZE - 0x1234
    assert result.segment == holding.name
    assert sorted(result.removed) == sorted([later.name, partial.name])
    assert not later.exists() and not partial.exists()
    assert first.read_bytes() == bytes([0xAB]) * SIZE
    assert other_timeline.exists() and history.exists()


def test_an_end_on_a_segment_boundary_removes_that_segment(pg_wal: Path) -> None:
    before, starting = segment(pg_wal, 1, 1), segment(pg_wal, 1, 2)
    result = end_at(pg_wal, f"0/{2 * SIZE:X}", 1)
    assert result.segment is None and result.removed == (starting.name,)
    assert before.read_bytes() == bytes([0xAB]) * SIZE


def test_trimming_twice_changes_nothing_more(pg_wal: Path) -> None:
    segment(pg_wal, 1, 5)
    end = f"0/{5 * SIZE + 4096:X}"
    assert end_at(pg_wal, end, 1).cleared == SIZE - 4096
    assert end_at(pg_wal, end, 1).cleared == 0


def test_a_copy_without_the_segment_of_its_end_is_refused(pg_wal: Path) -> None:
    segment(pg_wal, 1, 1)
    with pytest.raises(ComponentError, match="lacks segment 000000010000000000000002"):
        end_at(pg_wal, f"0/{2 * SIZE + 8:X}", 1)


def test_a_copy_without_wal_of_its_timeline_is_refused(pg_wal: Path) -> None:
    segment(pg_wal, 2, 1)
    with pytest.raises(ComponentError, match="no WAL segments of timeline 1"):
        end_at(pg_wal, f"0/{SIZE + 8:X}", 1)


def test_a_partial_segment_beside_the_full_one_is_trimmed_too(pg_wal: Path) -> None:
    full, partial = segment(pg_wal, 1, 2), segment(pg_wal, 1, 2, suffix=".partial")
    result = end_at(pg_wal, f"0/{2 * SIZE + 64:X}", 1)
    assert result.segment == full.name
    assert full.read_bytes()[64:] == partial.read_bytes()[64:] == bytes(SIZE - 64)


def test_segments_of_a_later_timeline_are_kept_and_named(pg_wal: Path) -> None:
    segment(pg_wal, 1, 2)
    switched = segment(pg_wal, 2, 2)
    result = end_at(pg_wal, f"0/{2 * SIZE + 64:X}", 1)
    assert result.later_timelines == (switched.name,)
    assert switched.read_bytes() == bytes([0xAB]) * SIZE
