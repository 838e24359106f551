"""postgresql: a checkpoint, or a backup started and stopped in one held session.

- ``mode: checkpoint`` (default): ``CHECKPOINT`` at hold, so the data files
  a block-level or snapshot copy takes are as recent as they can be and
  crash recovery from them replays little WAL. Nothing stays held. The
  connection is the run's shared session to that server when the engine
  has one open (:mod:`haprotect.pgsession`): the cut that follows (the
  primary's WAL position) asks on the same connection.
- ``mode: backup``: for a file-level copy of a running server. At hold,
  ``pg_backup_start(label, fast)`` (PostgreSQL 15 and later;
  ``pg_start_backup(label, fast, false)`` before) in a session that stays
  open; at resume, ``pg_backup_stop()`` (``pg_stop_backup(false)``) in the
  same session. The reports hold the start LSN and the stop LSN, and the
  ``backup_label`` (and ``tablespace_map``) content that must be written
  into the copy for it to start.

Lease: a non-exclusive backup belongs to its session. If haprotect dies,
the connection drops and PostgreSQL aborts the backup by itself; nothing
stays held. Every statement runs under ``statement_timeout`` = the spec's
timeout.

Options: ``dsn`` (required, a libpq connection string or URI), ``mode``,
``label`` (default ``haprotect``), ``fast`` (default true: an immediate
checkpoint), ``wait_for_archive`` (default true).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from haprotect import pgsession
from haprotect.pgsession import one_line
from haprotect.quiesce import options as opt
from haprotect.quiesce.base import HoldReport, QuiesceSpec, ResumeReport

log = logging.getLogger(__name__)

APPLICATION = "haprotect-quiesce"
OPTIONS = ("dsn", "mode", "label", "fast", "wait_for_archive")
_NEW_NAMES = 150000  #: pg_backup_start/pg_backup_stop from PostgreSQL 15


class PostgresQuiescer:
    """The ``postgresql`` quiescer; keeps each ``backup`` mode session open from hold to resume."""

    name = "postgresql"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, psycopg.Connection[Any]] = {}

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        opt.known(spec, OPTIONS)
        opt.string(spec, "dsn")
        opt.choice(spec, "mode", ("checkpoint", "backup"), "checkpoint")
        opt.string(spec, "label", "haprotect")
        opt.boolean(spec, "fast", True)
        opt.boolean(spec, "wait_for_archive", True)

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        self.validate(spec)
        mode = opt.choice(spec, "mode", ("checkpoint", "backup"), "checkpoint")
        if mode == "checkpoint":
            return HoldReport(time.time(), self._checkpoint(spec))
        with self._lock:
            if spec.key in self._sessions:
                raise opt.fail(spec, "a backup is already running in this session")
        conn = self._connect(spec)
        try:
            version = conn.info.server_version
            details = {"mode": mode, "server_version": str(version)}
            with self._lock:
                self._sessions[spec.key] = conn
            label = opt.string(spec, "label", "haprotect")
            fast = opt.boolean(spec, "fast", True)
            if version >= _NEW_NAMES:
                row = conn.execute("SELECT pg_backup_start(%s, %s)::text", (label, fast))
            else:
                row = conn.execute("SELECT pg_start_backup(%s, %s, false)::text", (label, fast))
            found = row.fetchone()
            details["start_lsn"] = str(found[0]) if found else ""
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            details["on_standby"] = "true" if in_recovery and in_recovery[0] else "false"
        except psycopg.Error as exc:
            with self._lock:
                self._sessions.pop(spec.key, None)
            conn.close()  # a backup that did not start needs no stop; one that did is aborted
            raise opt.fail(spec, one_line(exc)) from None
        log.info("%s: backup started at %s", spec.label, details["start_lsn"])
        return HoldReport(time.time(), details)

    def _checkpoint(self, spec: QuiesceSpec) -> dict[str, str]:
        """``CHECKPOINT`` on the shared session to the server, if the run has one open.

        The statement timeout is set for the checkpoint and reset after, so
        the session is left as it was found for the cut that follows.
        """
        found = conninfo_to_dict(opt.string(spec, "dsn"))
        params = {k: str(v) for k, v in found.items() if v is not None}
        timeout_ms = max(1, int(spec.timeout_seconds * 1000))

        def open_() -> psycopg.Connection[Any]:
            return pgsession.connect(
                params,
                application=APPLICATION,
                where=spec.label,
                timeout=max(1, int(spec.timeout_seconds)),
            )

        try:
            with pgsession.session(params, open_) as conn:
                details = {"mode": "checkpoint", "server_version": str(conn.info.server_version)}
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, false)", (str(timeout_ms),)
                )
                try:
                    conn.execute("CHECKPOINT")
                finally:
                    conn.execute("RESET statement_timeout")
                details.update(self._checkpoint_lsns(conn))
        except pgsession.ConnectError as exc:
            raise opt.fail(spec, f"cannot connect: {exc.reason}") from None
        except psycopg.Error as exc:
            raise opt.fail(spec, one_line(exc)) from None
        return details

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        with self._lock:
            conn = self._sessions.pop(spec.key, None)
        if conn is None:
            return ResumeReport(time.time())
        try:
            if conn.closed:
                raise opt.fail(
                    spec, "the session was lost, so PostgreSQL aborted the backup; copy again"
                )
            wait = opt.boolean(spec, "wait_for_archive", True)
            if conn.info.server_version >= _NEW_NAMES:
                sql = "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(%s)"
            else:
                sql = "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, %s)"
            row = conn.execute(sql, (wait,)).fetchone()
        except psycopg.Error as exc:
            raise opt.fail(spec, f"cannot stop the backup: {one_line(exc)}") from None
        finally:
            conn.close()
        if row is None:
            raise opt.fail(spec, "pg_backup_stop returned nothing")
        lsn, labelfile, spcmap = row
        details = {"stop_lsn": str(lsn), "backup_label": str(labelfile or "")}
        if spcmap:
            details["tablespace_map"] = str(spcmap)
        log.info("%s: backup stopped at %s", spec.label, lsn)
        return ResumeReport(time.time(), details)

    def _connect(self, spec: QuiesceSpec) -> psycopg.Connection[Any]:
        timeout_ms = max(1, int(spec.timeout_seconds * 1000))
        try:
            return psycopg.connect(
                opt.string(spec, "dsn"),
                autocommit=True,
                connect_timeout=max(1, int(spec.timeout_seconds)),
                options=f"-c statement_timeout={timeout_ms}",
                application_name=APPLICATION,
            )
        except psycopg.Error as exc:
            raise opt.fail(spec, f"cannot connect: {one_line(exc)}") from None

    @staticmethod
    def _checkpoint_lsns(conn: psycopg.Connection[Any]) -> dict[str, str]:
        try:
            row = conn.execute(
                "SELECT checkpoint_lsn::text, redo_lsn::text, timeline_id "
                "FROM pg_control_checkpoint()"
            ).fetchone()
        except psycopg.Error as exc:  # not allowed for this role: the checkpoint still happened
            log.debug("pg_control_checkpoint: %s", one_line(exc))
            return {}
        if row is None:
            return {}
        return {"checkpoint_lsn": str(row[0]), "redo_lsn": str(row[1]), "timeline": str(row[2])}
