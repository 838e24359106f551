"""What a restore lost: byte ranges of files whose chunks could not be read back.

A chunk that is not in the index, whose pack is missing or cut short, or
that fails verification costs only the bytes it held, in the files that use
it. The restore records each such range (:class:`LostRange`), writes the
rest of the file with the range zeroed under a name of its own (``NAME`` +
:data:`DAMAGED_SUFFIX`) and leaves the file's own name empty, so that
nothing under a final name looks complete when it is not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from haprotect.model.snapshot import FileError, LostFile, LostRange

DAMAGED_SUFFIX = b".haprotect-damaged"
NAME_MAX = 255

PACK_MISSING = "the pack is missing"
PACK_TRUNCATED = "the pack is cut short"
NOT_INDEXED = "not in the index"


def lost(start: int, length: int, chunk: bytes, pack: str | None, reason: str) -> LostRange:
    return LostRange(start, start + length, chunk.hex(), pack, reason)


def reason_of(message: str, chunk: bytes, pack: str) -> str:
    """A verification error's message without the blob and pack it names."""
    for prefix in (f"blob {chunk.hex()[:16]} in pack {pack} ", f"pack {pack} "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def merged(ranges: Iterable[LostRange]) -> tuple[LostRange, ...]:
    """The ranges in order, those that touch with the same pack and reason made one."""
    out: list[LostRange] = []
    for r in sorted(ranges, key=lambda r: r.start):
        last = out[-1] if out else None
        if (
            last is not None
            and last.end == r.start
            and (last.pack, last.reason)
            == (
                r.pack,
                r.reason,
            )
        ):
            out[-1] = LostRange(
                last.start, r.end, last.chunk, last.pack, last.reason, last.chunks + r.chunks
            )
        else:
            out.append(r)
    return tuple(out)


def damaged_name(name: bytes) -> bytes:
    """The name the readable part of a damaged file is kept under, beside its own."""
    return name[: NAME_MAX - len(DAMAGED_SUFFIX)] + DAMAGED_SUFFIX


def short(hex_id: str) -> str:
    return f"{hex_id[:12]}…"


def describe(r: LostRange) -> str:
    """``bytes 0-1048575 (chunk 3f2a… in pack 77e0…: does not match its id)``."""
    what = f"chunk {short(r.chunk)}"
    if r.chunks > 1:
        what = f"{r.chunks} chunks from {short(r.chunk)}"
    where = f" in pack {short(r.pack)}" if r.pack else ""
    return f"bytes {r.start}-{r.end - 1} ({what}{where}: {r.reason})"


def lost_file(path: str, ranges: Iterable[LostRange], kept_as: str | None) -> LostFile:
    return LostFile(path, merged(ranges), kept_as)


def file_error(item: LostFile) -> FileError:
    """The error that names a lost file, its ranges and where its readable bytes are."""
    text = ", ".join(describe(r) for r in item.ranges)
    kept = (
        f"; the rest is in {os.path.basename(item.kept_as)}" if item.kept_as else "; not restored"
    )
    return FileError(item.path, f"lost {text}{kept}")
