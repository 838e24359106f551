"""Proof that nothing the lab acknowledged was lost.

:func:`verify_acknowledged` reads the journal and checks every acknowledged
order against the database (the row exists and its payload hashes to what
was sent) and every acknowledged upload against the shared directory (the
file exists with the same bytes). By default it first has the application
flush its buffer, and checks the current primary and the lab's own uploads
directory; a restore test points it at a restored copy instead (``dsn``,
``uploads_dir``) and at the entries journaled before the backup (``until``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from haprotect.errors import ComponentError
from haprotect.lab.journal import ORDER, UPLOAD, JournalEntry, read_journal
from haprotect.lab.shop import sha256_text

if TYPE_CHECKING:
    from haprotect.lab.lab import Lab

_BATCH = 1000
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify_acknowledged` checked, and the acknowledged requests not found intact."""

    where: str  #: the database and directory checked
    orders_checked: int
    uploads_checked: int
    missing_orders: tuple[str, ...]
    changed_orders: tuple[str, ...]
    missing_uploads: tuple[str, ...]
    changed_uploads: tuple[str, ...]
    flushed: int | None = None  #: rows the application flushed first, if asked to

    @property
    def ok(self) -> bool:
        return not (
            self.missing_orders
            or self.changed_orders
            or self.missing_uploads
            or self.changed_uploads
        )

    def summary(self) -> str:
        head = f"{self.orders_checked} orders and {self.uploads_checked} uploads acknowledged"
        if self.ok:
            return f"{head}: all present and intact"
        problems = []
        for label, ids in (
            ("orders missing", self.missing_orders),
            ("orders changed", self.changed_orders),
            ("uploads missing", self.missing_uploads),
            ("uploads changed", self.changed_uploads),
        ):
            if ids:
                shown = ", ".join(ids[:_SHOWN]) + (", ..." if len(ids) > _SHOWN else "")
                problems.append(f"{len(ids)} {label} ({shown})")
        return f"{head}: " + "; ".join(problems)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_acknowledged(
    lab: Lab,
    *,
    flush: bool = True,
    node: str | None = None,
    dsn: str | None = None,
    uploads_dir: Path | None = None,
    until: float | None = None,
) -> VerifyReport:
    """Check every journaled acknowledgement (up to ``until``, a Unix time) is still there."""
    flushed = lab.flush() if flush else None
    entries = _latest(read_journal(lab.journal_path), until)
    orders = [e for e in entries if e.kind == ORDER]
    uploads = [e for e in entries if e.kind == UPLOAD]
    conninfo = dsn or lab.dsn(node or lab.primary)
    directory = uploads_dir or lab.uploads_dir
    missing_orders, changed_orders = _check_orders(conninfo, orders)
    missing_uploads, changed_uploads = _check_uploads(directory, uploads)
    return VerifyReport(
        where=f"{_describe(conninfo)}, {directory}",
        orders_checked=len(orders),
        uploads_checked=len(uploads),
        missing_orders=tuple(missing_orders),
        changed_orders=tuple(changed_orders),
        missing_uploads=tuple(missing_uploads),
        changed_uploads=tuple(changed_uploads),
        flushed=flushed,
    )


def _latest(entries: list[JournalEntry], until: float | None) -> list[JournalEntry]:
    by_key = {(e.kind, e.id): e for e in entries if until is None or e.time <= until}
    return list(by_key.values())


def _check_orders(conninfo: str, orders: list[JournalEntry]) -> tuple[list[str], list[str]]:
    missing: list[str] = []
    changed: list[str] = []
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for start in range(0, len(orders), _BATCH):
                batch = orders[start : start + _BATCH]
                rows = conn.execute(
                    "SELECT id, payload FROM orders WHERE id = ANY(%s)", ([e.id for e in batch],)
                ).fetchall()
                stored = {row[0]: row[1] for row in rows}
                for entry in batch:
                    payload = stored.get(entry.id)
                    if payload is None:
                        missing.append(entry.id)
                    elif sha256_text(payload) != entry.sha256:
                        changed.append(entry.id)
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()
        raise ComponentError(
            f"cannot read orders from {_describe(conninfo)}: {message[0] if message else exc}"
        ) from None
    return missing, changed


def _check_uploads(directory: Path, uploads: list[JournalEntry]) -> tuple[list[str], list[str]]:
    missing: list[str] = []
    changed: list[str] = []
    for entry in uploads:
        try:
            data = (directory / entry.id).read_bytes()
        except FileNotFoundError:
            missing.append(entry.id)
            continue
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            changed.append(entry.id)
    return missing, changed


def _describe(conninfo: str) -> str:
    """The database a connection string names, without anything secret in it."""
    parts = dict(p.split("=", 1) for p in conninfo.split() if "=" in p)
    return (
        f"database {parts.get('dbname', '?')} on {parts.get('host', '?')}:{parts.get('port', '?')}"
    )
