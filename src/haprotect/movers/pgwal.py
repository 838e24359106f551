"""Ending a base backup's WAL at the backup's end position, so a restore stops there.

``pg_basebackup -X stream`` stops streaming once it has the WAL up to the
backup's end position, but the last segment it writes may hold more: the
records that had reached its source by then. A restored copy replays every
record its ``pg_wal`` holds, so it would hold those writes too, which for
a copy of a standby paused at a cut means writes made after the cut.

:func:`end_at` makes the end position the end of the copy's WAL: the rest
of the segment that holds it is zeroed and later segments of that timeline
are removed. Zeroes are what PostgreSQL itself reads as the end of WAL (it
fills new segments with them), so recovery replays up to the end position,
where the backup is consistent, and stops. Nothing before the end position
is touched, and the end position is where the backup is complete, so the
copy stays whole. It is done on the staged copy, before it is stored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from haprotect.errors import ComponentError
from haprotect.movers.pgcheck import lsn_int

_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$")


@dataclass(frozen=True, slots=True)
class WalEnd:
    """What :func:`end_at` changed in ``pg_wal``."""

    segment: str | None  #: the segment file the end position is in (None: it starts the next)
    cleared: int  #: bytes after the end position, in that segment, that were not zero
    removed: tuple[str, ...]  #: later segments removed
    later_timelines: tuple[str, ...] = ()  #: segments of later timelines, left as they are


def segment_name(timeline: int, segno: int, segment_size: int) -> str:
    per_id = 0x1_0000_0000 // segment_size
    return f"{timeline:08X}{segno // per_id:08X}{segno % per_id:08X}"


def end_at(pg_wal: Path, end_lsn: str, timeline: int) -> WalEnd:
    """Make ``end_lsn`` the end of the WAL in ``pg_wal`` (of ``timeline``).

    Segments of a later timeline (the source switched timelines while the
    backup ran) are not touched, and are listed in the answer: a restore
    may follow them past the end position.
    """
    files = _segment_files(pg_wal)
    mine = [(segno, name) for tli, segno, name in files if tli == timeline]
    later = tuple(sorted(name for tli, _, name in files if tli > timeline))
    if not mine:
        raise ComponentError(f"no WAL segments of timeline {timeline} in {pg_wal}")
    size = _segment_size(pg_wal / mine[0][1])
    per_id = 0x1_0000_0000 // size
    end_segno, offset = divmod(lsn_int(end_lsn), size)
    removed: list[str] = []
    cleared = 0
    kept: str | None = None
    for raw_segno, file_name in sorted(mine):
        segno = (raw_segno >> 32) * per_id + (raw_segno & 0xFFFF_FFFF)
        if segno > end_segno or (segno == end_segno and offset == 0):
            (pg_wal / file_name).unlink()
            removed.append(file_name)
        elif segno == end_segno:
            cleared += _zero_from(pg_wal / file_name, offset, size)
            if kept is None or not file_name.endswith(".partial"):
                kept = file_name
    if offset and kept is None:
        raise ComponentError(
            f"the copy's WAL lacks segment {segment_name(timeline, end_segno, size)}, "
            f"which holds its end position {end_lsn}"
        )
    return WalEnd(kept, cleared, tuple(removed), later)


def _segment_files(pg_wal: Path) -> list[tuple[int, int, str]]:
    """(timeline, high and low segment number as one int, file name) of each segment file."""
    found: list[tuple[int, int, str]] = []
    try:
        names = os.listdir(pg_wal)
    except OSError as exc:
        raise ComponentError(f"cannot list {pg_wal}: {exc.strerror}") from None
    for file_name in names:
        match = _SEGMENT.match(file_name)
        if match:
            high, low = int(match.group(2), 16), int(match.group(3), 16)
            found.append((int(match.group(1), 16), (high << 32) | low, file_name))
    return found


def _segment_size(path: Path) -> int:
    size = path.stat().st_size
    if size < 1 << 20 or size > 1 << 30 or size & (size - 1):
        raise ComponentError(f"{path} is {size} bytes, not a WAL segment size")
    return size


def _zero_from(path: Path, offset: int, size: int) -> int:
    """Zero ``path`` from ``offset`` to ``size``; how many bytes were not zero before."""
    changed = 0
    block = 1 << 16
    zeroes = bytes(block)
    with path.open("r+b") as segment:
        position = offset
        while position < size:
            segment.seek(position)
            length = min(block, size - position)
            data = segment.read(length)
            nonzero = len(data) - data.count(0)
            if nonzero:
                changed += nonzero
                segment.seek(position)
                segment.write(zeroes[:length])
            position += length
        segment.flush()
        os.fsync(segment.fileno())
    return changed
