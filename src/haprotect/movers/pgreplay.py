"""Pausing a standby's WAL replay at the cut, so its copy ends exactly there.

A base backup of a standby ends where the standby has replayed to when the
backup stops (its minimum recovery point), and a restore that stops at the
first consistent point (``recovery_target = 'immediate'``) holds exactly
what the standby had replayed then. To make that the cut, while the tiers
are held (no new work reaches the database):

1. the standby is given a few seconds to replay up to the primary's WAL
   position at the cut (the *cut LSN*: every acknowledged commit ends there
   or before);
2. ``pg_wal_replay_pause()``, and wait until the standby says ``paused``;
   its ``pg_last_wal_replay_lsn()`` is the *pause LSN* (at or after the cut
   LSN; nothing between the two was sent by the application, which is held);
3. the tiers resume; the standby keeps *receiving* WAL (the primary's
   synchronous commits still wait only for it to be written there) but
   replays nothing more, so ``pg_basebackup`` from it ends at or before the
   pause LSN; then ``pg_wal_replay_resume()`` and it catches up.

Lease: before pausing, a keeper process (:mod:`haprotect.quiesce.lease`)
is started whose release is ``psql -c 'SELECT pg_wal_replay_resume()'``
against the standby: if haprotect dies the standby resumes at once, if it
hangs, when the lease ends. A promotion ends a pause too (PostgreSQL 14 and
later), so a paused standby never blocks a failover.

Needs: the backup user may call ``pg_wal_replay_pause()`` and
``pg_wal_replay_resume()`` (a superuser, or ``GRANT EXECUTE`` on both).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from haprotect.errors import ComponentError, HaprotectError
from haprotect.movers.pgcheck import Endpoint, lsn_int, one_line
from haprotect.pgtools import find_postgres
from haprotect.quiesce.lease import Lease

log = logging.getLogger(__name__)

#: How long the standby may take, while the tiers are held, to replay up to the cut.
CATCH_UP_SECONDS = 5.0
#: How long a pause may last if its holder hangs (the copy's own time limit, and some).
LEASE_SECONDS = 6 * 3600 + 600
_PAUSE_STATE = 140000  #: pg_get_wal_replay_pause_state() from PostgreSQL 14
_RESUME_SQL = "SELECT pg_catalog.pg_wal_replay_resume()"


@dataclass(slots=True)
class ReplayPause:
    """A standby whose replay stands still at ``lsn`` until :meth:`resume`."""

    endpoint: Endpoint
    cut_lsn: str  #: the primary's position at the cut
    lsn: str  #: where the standby's replay stands (>= cut_lsn)
    waited_seconds: float  #: how long it took to replay up to the cut
    lease: Lease | None = None
    resumed: bool = field(default=False)
    problem: str | None = field(default=None)

    def resume(self) -> str | None:
        """Resume replay (once; later calls repeat the first answer): a problem, or None.

        Asked directly first; if that fails, the lease keeper is told to run its
        release now (it retries); only if both fail does the standby stay paused.
        """
        if self.resumed:
            return self.problem
        self.resumed = True
        try:
            with self.endpoint.connect() as conn:
                conn.execute(_RESUME_SQL)
        except (psycopg.Error, ComponentError) as exc:
            text = exc.message if isinstance(exc, ComponentError) else one_line(exc)
            answer = self.lease.release_now() if self.lease is not None else None
            if answer is None or not answer.endswith("rc=0"):
                self.problem = (
                    f"WAL replay on {self.endpoint} could not be resumed ({text}); "
                    f"it stays paused until someone runs {_RESUME_SQL} there"
                )
            return self.problem
        if self.lease is not None:
            released = self.lease.cancel()
            if released is not None:
                log.warning("replay pause of %s: the lease keeper %s", self.endpoint, released)
        return None


def pause_at(
    standby: Endpoint,
    cut_lsn: str,
    *,
    catch_up_seconds: float = CATCH_UP_SECONDS,
    lease_seconds: float = LEASE_SECONDS,
) -> ReplayPause:
    """Pause ``standby``'s replay once it has replayed ``cut_lsn``; raise if it cannot be."""
    clock = time.monotonic()
    deadline = clock + catch_up_seconds
    try:
        with standby.connect() as conn:
            version = _scalar(conn, "SELECT current_setting('server_version_num')::int")
            replayed = _wait_for(conn, cut_lsn, deadline)
            if replayed is None:
                raise ComponentError(
                    f"{standby} did not replay up to the cut {cut_lsn} in {catch_up_seconds:g}s"
                )
            waited = time.monotonic() - clock
            lease = _lease(standby, lease_seconds)
            try:
                conn.execute("SELECT pg_catalog.pg_wal_replay_pause()")
                lsn = _wait_paused(conn, int(str(version)), deadline + catch_up_seconds)
            except BaseException:
                _resume_quietly(conn)
                lease.cancel()
                raise
    except psycopg.Error as exc:
        raise ComponentError(f"cannot pause WAL replay on {standby}: {one_line(exc)}") from None
    if lsn_int(lsn) < lsn_int(cut_lsn):  # cannot happen: it had replayed the cut before pausing
        pause = ReplayPause(standby, cut_lsn, lsn, waited, lease)
        pause.resume()
        raise ComponentError(f"{standby} paused at {lsn}, before the cut {cut_lsn}")
    return ReplayPause(standby, cut_lsn, lsn, waited, lease)


def _scalar(conn: psycopg.Connection[Any], sql: str) -> object:
    row = conn.execute(sql).fetchone()
    if row is None:
        raise ComponentError(f"no answer to {sql!r}")
    return row[0]


def _wait_for(conn: psycopg.Connection[Any], lsn: str, deadline: float) -> str | None:
    target = lsn_int(lsn)
    while True:
        replayed = _scalar(conn, "SELECT pg_catalog.pg_last_wal_replay_lsn()::text")
        if replayed is None:
            raise ComponentError("it is not a standby (no replay position)")
        if lsn_int(str(replayed)) >= target:
            return str(replayed)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def _wait_paused(conn: psycopg.Connection[Any], version: int, deadline: float) -> str:
    """Wait until replay has stopped; where it stands."""
    previous: object = None
    while True:
        if version >= _PAUSE_STATE:
            row = conn.execute(
                "SELECT pg_catalog.pg_get_wal_replay_pause_state(), "
                "pg_catalog.pg_last_wal_replay_lsn()::text"
            ).fetchone()
            if row is not None and row[0] == "paused":
                return str(row[1])
        else:  # before 14, "paused" is only the request: wait for the position to stand still
            lsn = _scalar(conn, "SELECT pg_catalog.pg_last_wal_replay_lsn()::text")
            if lsn == previous:
                return str(lsn)
            previous = lsn
            time.sleep(0.05)
        if time.monotonic() >= deadline:
            raise ComponentError("replay did not pause in time")
        time.sleep(0.005)


def _resume_quietly(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.execute(_RESUME_SQL)
    except psycopg.Error as exc:
        log.warning("could not resume WAL replay: %s", one_line(exc))


def _lease(standby: Endpoint, seconds: float) -> Lease:
    """A keeper that resumes the standby's replay if we die or hang."""
    try:
        psql = find_postgres().tool("psql")
    except HaprotectError as exc:
        raise ComponentError(f"no psql to guard the replay pause with: {exc.message}") from None
    release = [
        psql,
        "-X",
        "-q",
        "-w",
        "-h",
        standby.host,
        "-p",
        standby.port,
        "-U",
        standby.user,
        "-d",
        standby.dbname,
        "-c",
        _RESUME_SQL,
    ]
    env = {k: v for k, v in os.environ.items() if k.startswith("PG") or k in ("PATH", "HOME")}
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return Lease.start(release, seconds, what=f"replay pause of {standby}", env=env)
