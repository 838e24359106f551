"""The PostgreSQL mover: a physical base backup, taken from the standby.

Backup: ``pg_basebackup -X stream -c fast --no-sync -Fp`` against the node
the plan chose, a standby whenever one is healthy, so the primary keeps
serving and does no backup work: no backup session, no WAL sender on it.
Before it starts, the standby is checked again (asking the standby alone,
:mod:`haprotect.movers.pgcheck`) and given a few seconds to replay up to the
primary's position as it last heard it, so that what the primary had
committed when the backup started is in it; unless its replay was paused
at a cut (:mod:`haprotect.movers.pgcut`), which it resumes as soon as
``pg_basebackup`` is done. Only the cut connects to the primary; a backup
without a cut connects only to the node it reads. The plain-format copy goes to a staging
directory; its WAL is made to end at the backup's end position
(:mod:`haprotect.movers.pgwal`), so that a restore holds exactly what the
backup recorded and nothing its source wrote while it finished; then it
goes into the repository (plain files, so table files deduplicate page by
page across backups), and the staging directory is removed. The snapshot
records the node, whether it was a standby, the lag at the start, the
timeline, and the backup's start and end WAL positions (from
``pg_basebackup``'s own report and ``backup_label``).

Restore: into an empty data directory (or, when told, over a stopped
server's), which is then made a standalone server, started on a free port
and asked a question (:mod:`haprotect.movers.pgserver`).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from haprotect.errors import ComponentError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.model.snapshot import JSONValue
from haprotect.movers import pgcheck, pgcut, pgserver, pgwal
from haprotect.movers.base import (
    BackupJob,
    BackupOutcome,
    Mover,
    RestoreJob,
    RestoreOutcome,
    size_text,
)
from haprotect.movers.cut import CutRequest
from haprotect.movers.pgcheck import Endpoint
from haprotect.movers.placement import install_tree, refuse_occupied, staged_restore
from haprotect.pgtools import find_postgres, server_running
from haprotect.repo.errors import RestoreError

BASEBACKUP_TIMEOUT = 6 * 3600
CATCH_UP_SECONDS = 10.0
_START = re.compile(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)")
_END = re.compile(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)")


class PostgresMover(Mover):
    """A physical base backup from the standby; its cut pauses that standby's replay."""

    name = "postgresql"

    def applies_to(self, kind: str) -> bool:
        return kind == "postgresql"

    def cut_needs_source(self, item: PlanItem) -> bool:
        return True  # the standby to pause at the cut

    def prepare_cut(self, request: CutRequest) -> pgcut.PostgresCut | None:
        return pgcut.take(request)

    def quiescer_options(
        self, item: PlanItem, inventory: Inventory, quiescer: str
    ) -> Mapping[str, str]:
        """A ``postgresql`` quiescer connects to the item's primary (a ``dsn``)."""
        dsn = pgcut.primary_dsn(inventory, item) if quiescer == "postgresql" else None
        return {} if dsn is None else {"dsn": dsn}

    def probe(self, item: PlanItem, node: str, inventory: Inventory) -> SourceHealth:
        """The node's health from the node alone: a standby is not compared with its primary."""
        endpoint = Endpoint.of_item(inventory, item, node)
        primary = item.source.primary
        if node == primary:
            return pgcheck.check_primary(endpoint)
        return pgcheck.check_standby(endpoint, primary)

    def backup(self, job: BackupJob) -> BackupOutcome:
        item = job.item
        endpoint = Endpoint.of(job.node, job.access.host, job.location)
        from_standby = job.node != item.source.primary
        details: dict[str, JSONValue] = {"backup_from": "standby" if from_standby else "primary"}
        details.update(self._before(job, endpoint, from_standby))
        staged = job.staging / "pgdata"
        started = datetime.now(UTC)
        clock = time.monotonic()
        job.note(f"pg_basebackup from {endpoint}")
        try:
            report = _basebackup(endpoint, staged)
        finally:
            job.release_source()
        details.update(_positions(report, staged))
        details.update(_end_wal(staged, details))
        if "wal_later_timelines" in details:
            job.note(
                "the source switched timelines during the backup: its WAL of the later "
                "timeline is kept, and a restore may replay past the backup's end"
            )
        details["basebackup_started"] = started.isoformat()
        details["basebackup_finished"] = datetime.now(UTC).isoformat()
        details["basebackup_seconds"] = round(time.monotonic() - clock, 3)
        snapshot = job.repo.backup(
            [staged],
            tags=job.tags,
            metadata=job.metadata("pgdata", details),
            host=job.node,
            on_progress=job.progress,
            record_as=job.record_as,
        )
        role = "standby" if from_standby else "primary"
        message = (
            f"base backup of {role} {job.node}: {size_text(snapshot.stats.bytes_total)}, "
            f"WAL {details.get('start_lsn')}..{details.get('end_lsn')} "
            f"on timeline {details.get('timeline')}"
        )
        if snapshot.errors:
            message += f"; {len(snapshot.errors)} files could not be read"
        return BackupOutcome(snapshot, message, details)

    def _before(
        self, job: BackupJob, endpoint: Endpoint, from_standby: bool
    ) -> dict[str, JSONValue]:
        """Check the source once more, asking it alone; a standby then catches up with
        the primary's position as it last heard it."""
        state = pgcheck.node_state(endpoint)
        facts: dict[str, JSONValue] = {}
        if state.server_version is not None:
            facts["server_version"] = state.server_version
        if state.system_identifier is not None:
            facts["system_identifier"] = state.system_identifier
        if not from_standby:
            health = pgcheck.judge_primary(job.node, state)
            if not health.healthy:
                raise ComponentError(f"primary {job.node} is no longer usable: {health.detail}")
            facts["primary_lsn"] = state.wal_lsn
            facts["lag_bytes"], facts["lag_seconds"] = 0, 0.0
            return facts
        health = pgcheck.judge_standby(job.node, state, job.item.source.primary)
        if not health.healthy:
            raise ComponentError(f"standby {job.node} is no longer usable: {health.detail}")
        facts.update({k: v for k, v in health.positions.items() if v is not None})
        if job.paused_at is not None:
            facts["paused_at"] = job.paused_at  # stands at the cut: nothing to catch up with
            return facts
        target = health.positions.get("primary_lsn")
        if isinstance(target, str) and health.lag_bytes:
            done, replayed = pgcheck.catch_up(endpoint, target, CATCH_UP_SECONDS)
            facts["caught_up_to"] = target if done else replayed
            if not done:
                job.note(
                    f"{job.node} did not replay up to the primary's {target} in "
                    f"{CATCH_UP_SECONDS:.0f}s (at {replayed}); backing it up as it is"
                )
        return facts

    def restore(self, job: RestoreJob) -> RestoreOutcome:
        target = job.target
        # the restore plan said so before anything was asked; it may have started since
        problem = server_running(target)
        if problem is not None:
            raise RestoreError(problem)
        refuse_occupied(target, job.overwrite)
        with staged_restore(
            job.repo, job.item.snapshot_id, job.item.root, target, job.progress
        ) as (restored, stats):
            install_tree(restored, target)
        if stats.errors:
            raise RestoreError(
                f"{len(stats.errors)} files of the data directory could not be restored "
                f"(first: {stats.errors[0].path}: {stats.errors[0].message})"
            )
        job.note(f"starting the restored PostgreSQL in {target} to check it")
        user = job.item.location.get("pguser") or pgcheck.DEFAULT_USER
        check = pgserver.start_and_check(target, keep_running=job.keep_running, user=user)
        state = "running" if job.keep_running else "checked, then stopped again"
        message = (
            f"PostgreSQL {check.version} in {target} started on port {check.port} and answers "
            f"({check.databases} databases); {state}"
        )
        details: dict[str, JSONValue] = {
            "pgdata": str(target),
            "port": check.port,
            "running": job.keep_running,
            "version": check.version,
            "databases": check.databases,
            "log": check.log,
        }
        if job.keep_running:
            details["dsn"] = f"host=127.0.0.1 port={check.port} user={user}"
        return RestoreOutcome(message, details)


def stop_restored(pgdata: Path) -> None:
    """Stop a server a restore left running in ``pgdata``."""
    pgserver.stop(pgdata)


def _basebackup(endpoint: Endpoint, staged: Path) -> str:
    """Run pg_basebackup into ``staged``; its report (stderr)."""
    tool = find_postgres().tool("pg_basebackup")
    argv = [
        tool,
        "-h",
        endpoint.host,
        "-p",
        endpoint.port,
        "-U",
        endpoint.user,
        "-D",
        str(staged),
        "-X",
        "stream",
        "-c",
        "fast",
        "--no-sync",
        "-Fp",
        "-v",
        "--no-password",
        "-l",
        "haprotect",
    ]
    try:
        result = subprocess.run(
            argv,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BASEBACKUP_TIMEOUT,
            env={**os.environ, "LC_ALL": "C"},  # its report is parsed: untranslated
        )
    except subprocess.TimeoutExpired:
        raise ComponentError(f"pg_basebackup from {endpoint} did not finish in time") from None
    except OSError as exc:
        raise ComponentError(f"cannot run {tool}: {exc}") from None
    if result.returncode != 0:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        raise ComponentError(
            f"pg_basebackup from {endpoint} failed: {lines[-1] if lines else 'no output'}"
        )
    return result.stderr


def _end_wal(staged: Path, positions: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
    """End the copy's WAL at the backup's end position (:mod:`haprotect.movers.pgwal`)."""
    end, timeline = positions.get("end_lsn"), positions.get("timeline")
    if not isinstance(end, str) or not isinstance(timeline, int):
        raise ComponentError("pg_basebackup did not say where its backup starts and ends")
    wal_end = pgwal.end_at(staged / "pg_wal", end, timeline)
    found: dict[str, JSONValue] = {
        "wal_ends_at": end,
        "wal_cleared_bytes": wal_end.cleared,
        "wal_segments_removed": list(wal_end.removed),
    }
    if wal_end.later_timelines:
        found["wal_later_timelines"] = list(wal_end.later_timelines)
    return found


def _positions(report: str, staged: Path) -> dict[str, JSONValue]:
    """Start and end WAL positions and timeline, from the report and backup_label."""
    found: dict[str, JSONValue] = {}
    start = _START.search(report)
    if start:
        found["start_lsn"], found["timeline"] = start.group(1), int(start.group(2))
    end = _END.search(report)
    if end:
        found["end_lsn"] = end.group(1)
    try:
        label = (staged / "backup_label").read_text()
    except OSError:
        return found
    for line in label.splitlines():
        key, _, value = line.partition(": ")
        if key == "START WAL LOCATION":
            found.setdefault("start_lsn", value.split()[0])
        elif key == "START TIMELINE":
            found.setdefault("timeline", int(value))
        elif key == "CHECKPOINT LOCATION":
            found["checkpoint_lsn"] = value
        elif key == "BACKUP FROM":
            found["label_backup_from"] = value
    return found
