"""The lock blob ``locks/<id>`` and the identity of the process that holds it.

Plain JSON (locks hold no secret)::

    {"version": 1, "exclusive": false, "operation": "backup",
     "host": "db1", "username": "root", "pid": 4242,
     "created": "2025-01-01T02:00:00+00:00", "time": "2025-01-01T02:05:00+00:00",
     "machine": "db1|<boot id>|pid:[4026531836]", "process_start": 123456}

``time`` is the last refresh. ``machine`` is equal for two processes exactly
when their pids are comparable (same host name, same boot, same pid
namespace); ``process_start`` (clock ticks since boot, from ``/proc``) tells
a live holder from a later process that reused its pid.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOCKS_PREFIX = "locks/"
LOCK_VERSION = 1


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), 0 if unknown, None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, IndexError):
        return 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0


def machine_id() -> str:
    """Host name, boot id and pid namespace: equal exactly when pids are comparable."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        return ""
    return "|".join(parts)


@dataclass(frozen=True, slots=True)
class LockInfo:
    """The contents of one lock blob: who holds it, for what, and since when."""

    id: str
    exclusive: bool
    operation: str
    host: str
    username: str
    pid: int
    created: datetime
    time: datetime
    machine: str = ""
    process_start: int | None = None

    @property
    def key(self) -> str:
        return LOCKS_PREFIX + self.id

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return (
            f"{kind} lock {self.id[:8]} ({self.operation}) of {self.username}@{self.host} "
            f"pid {self.pid}, taken {self.created:%Y-%m-%d %H:%M:%S %Z}, "
            f"refreshed {self.time:%Y-%m-%d %H:%M:%S %Z}"
        )

    def dump(self) -> bytes:
        body: dict[str, Any] = {
            "version": LOCK_VERSION,
            "exclusive": self.exclusive,
            "operation": self.operation,
            "host": self.host,
            "username": self.username,
            "pid": self.pid,
            "created": self.created.isoformat(),
            "time": self.time.isoformat(),
            "machine": self.machine,
            "process_start": self.process_start,
        }
        return json.dumps(body, indent=1).encode() + b"\n"


class NewerLock(ValueError):
    """A lock this haprotect cannot read that says it is of a newer version."""


def parse_lock(lock_id: str, blob: bytes) -> LockInfo:
    """A lock blob, or ValueError when it cannot be understood.

    :class:`NewerLock` when it cannot be understood but is a JSON object
    with a ``version`` above this haprotect's: a newer writer's lock, which
    must be respected, not taken for junk.
    """
    try:
        return _parse(lock_id, blob)
    except ValueError as exc:
        try:
            version = json.loads(blob).get("version")
        except (ValueError, AttributeError):
            raise exc from None
        if isinstance(version, int) and version > LOCK_VERSION:
            raise NewerLock(
                f"lock {lock_id} is of version {version}, newer than this haprotect reads "
                f"({LOCK_VERSION})"
            ) from None
        raise


def _parse(lock_id: str, blob: bytes) -> LockInfo:
    try:
        body: dict[str, Any] = json.loads(blob)
        start = body.get("process_start")
        return LockInfo(
            id=lock_id,
            exclusive=bool(body["exclusive"]),
            operation=str(body.get("operation", "")),
            host=str(body["host"]),
            username=str(body.get("username", "")),
            pid=int(body["pid"]),
            created=_aware(datetime.fromisoformat(body.get("created", body["time"]))),
            time=_aware(datetime.fromisoformat(body["time"])),
            machine=str(body.get("machine", "")),
            process_start=None if start is None else int(start),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"lock {lock_id} is unreadable ({exc})") from None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
