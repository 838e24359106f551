"""The journal of acknowledged requests, ``<lab>/journal.jsonl``.

One JSON object a line, appended (and fsynced) only after the lab answered
a request with success: ``{"kind": "order" | "upload", "id": ..., "sha256":
..., "size": ..., "time": ...}``. For an order, ``sha256`` is the hash of its
canonical JSON (what the database row's ``payload`` must hold); for an
upload, the hash of the file's bytes; ``sent`` is when the request was sent
(so that a request sent while the web tier was held is known to have been
queued). Whatever is in the journal was
promised to a client, and must survive backups, failovers and restores.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

ORDER = "order"
UPLOAD = "upload"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One acknowledged request, as a line of the journal records it."""

    kind: str
    id: str
    sha256: str
    size: int
    time: float  #: seconds since the epoch, when the acknowledgement arrived
    sent: float | None = None  #: seconds since the epoch, when the request was sent


class Journal:
    """An append-only writer; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None

    def append(self, entry: JournalEntry) -> None:
        line = (json.dumps(asdict(entry), sort_keys=True) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            # One write per line: O_APPEND keeps lines from several writers whole.
            os.write(self._fd, line)
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_journal(path: Path) -> list[JournalEntry]:
    """Every complete entry, oldest first (a torn last line, from a crash, is skipped)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    entries: list[JournalEntry] = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
            entries.append(
                JournalEntry(
                    str(data["kind"]),
                    str(data["id"]),
                    str(data["sha256"]),
                    int(data["size"]),
                    float(data["time"]),
                    float(data["sent"]) if data.get("sent") is not None else None,
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return entries
