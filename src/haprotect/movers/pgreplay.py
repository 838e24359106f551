"""Pausing a standby's WAL replay at the cut, so its copy ends exactly there.

A base backup of a standby ends where the standby has replayed to when the
backup stops (its minimum recovery point, which the backup's checkpoint
request moves up to the replay position), and the copy's WAL is made to end
there (:mod:`haprotect.movers.pgwal`). To make that the cut, while the tiers
are held (no new work reaches the database):

1. the standby is given a few seconds to replay up to the primary's WAL
   position at the cut (the *cut LSN*: every acknowledged commit ends there
   or before);
2. ``pg_wal_replay_pause()``, and wait until the standby says ``paused``;
   its ``pg_last_wal_replay_lsn()`` is the *pause LSN* (at or after the cut
   LSN; nothing between the two was sent by the application, which is held);
3. the tiers resume; the standby keeps *receiving* WAL, but replays nothing
   more until its copy has been read (``pg_basebackup``, which then ends at
   or before the pause LSN); then ``pg_wal_replay_resume()`` and it catches
   up. Meanwhile its readers see the cut, and the primary's synchronous
   commits, which wait for the standby to *write* or *flush* WAL, do not
   wait on the pause; with ``synchronous_commit = remote_apply`` they would,
   so such a standby is not paused (a warning says so, and its copy holds
   what was written after the cut).

Lease: before pausing, a keeper process (:mod:`haprotect.lease`)
is started whose release is ``psql -c 'SELECT pg_wal_replay_resume()'``
against the standby: if haprotect dies the standby resumes at once, if it
hangs, when the lease ends; the lease is renewed when the copy starts. A
promotion ends a pause too (PostgreSQL 14 and later, required: before 14 a
paused standby cannot be promoted), so a paused standby never blocks a
failover.

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
from haprotect.lease import Lease
from haprotect.movers.pgcheck import Endpoint, lsn_int
from haprotect.pgsession import one_line
from haprotect.pgtools import find_postgres

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
        A standby promoted meanwhile replays nothing more: that is no problem.
        """
        if self.resumed:
            return self.problem
        self.resumed = True
        try:
            with self.endpoint.session() as conn:
                if _scalar(conn, "SELECT pg_catalog.pg_is_in_recovery()"):
                    conn.execute(_RESUME_SQL)
        except (psycopg.Error, ComponentError) as exc:
            text = exc.message if isinstance(exc, ComponentError) else one_line(exc)
            if not _released_by_keeper(self.lease):
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

    def extend(self, seconds: float = LEASE_SECONDS) -> None:
        """Give the pause a fresh lease of ``seconds`` (the copy from it starts now)."""
        if self.lease is not None and not self.resumed:
            self.lease.renew(seconds)


def pause_at(
    standby: Endpoint,
    cut_lsn: str,
    *,
    primary: Endpoint | None = None,
    catch_up_seconds: float = CATCH_UP_SECONDS,
    lease_seconds: float = LEASE_SECONDS,
) -> ReplayPause:
    """Pause ``standby``'s replay once it has replayed ``cut_lsn``; raise if it cannot be.

    Refused (before anything is paused) on PostgreSQL before 14, where a
    paused standby cannot be promoted until it is resumed, and when the
    ``primary`` waits for standbys to *apply* commits (``synchronous_commit =
    remote_apply`` with synchronous standbys): a pause would stall every
    commit on it.
    """
    clock = time.monotonic()
    deadline = clock + catch_up_seconds
    lease: Lease | None = None
    try:
        if primary is not None:
            _check_primary_waits_not_for_apply(primary)
        with standby.session() as conn:
            _check_version(conn, standby)
            replayed = _wait_for(conn, cut_lsn, deadline)
            if replayed is None:
                raise ComponentError(
                    f"{standby} did not replay up to the cut {cut_lsn} in {catch_up_seconds:g}s"
                )
            waited = time.monotonic() - clock
            lease = _lease(standby, lease_seconds)
            conn.execute("SELECT pg_catalog.pg_wal_replay_pause()")
            lsn = _wait_paused(conn, deadline + catch_up_seconds)
    except BaseException as exc:
        if lease is not None:
            ReplayPause(standby, cut_lsn, cut_lsn, 0.0, lease).resume()
        if isinstance(exc, psycopg.Error):
            raise ComponentError(f"cannot pause WAL replay on {standby}: {one_line(exc)}") from None
        raise
    pause = ReplayPause(standby, cut_lsn, lsn, waited, lease)
    if lsn_int(lsn) < lsn_int(cut_lsn):  # cannot happen: it had replayed the cut before pausing
        pause.resume()
        raise ComponentError(f"{standby} paused at {lsn}, before the cut {cut_lsn}")
    return pause


def _check_version(conn: psycopg.Connection[Any], standby: Endpoint) -> None:
    version = int(str(_scalar(conn, "SELECT current_setting('server_version_num')::int")))
    if version < _PAUSE_STATE:
        raise ComponentError(
            f"{standby} runs PostgreSQL {version // 10000}, where a paused standby cannot be "
            "promoted until it is resumed (14 and later can)"
        )


def _check_primary_waits_not_for_apply(primary: Endpoint) -> None:
    with primary.session() as conn:
        row = conn.execute(
            "SELECT current_setting('synchronous_commit'), "
            "current_setting('synchronous_standby_names')"
        ).fetchone()
    if row is not None and row[0] == "remote_apply" and row[1]:
        raise ComponentError(
            f"{primary} has synchronous_commit = remote_apply: it waits for its synchronous "
            "standbys to apply each commit, so pausing one would stall it"
        )


def _released_by_keeper(lease: Lease | None) -> bool:
    """Have the lease keeper resume replay now; whether it says it did."""
    if lease is None:
        return False
    answer = lease.release_now()
    return answer is not None and answer.endswith("rc=0")


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


def _wait_paused(conn: psycopg.Connection[Any], deadline: float) -> str:
    """Wait until replay has stopped (PostgreSQL 14+ says so); where it stands."""
    while True:
        row = conn.execute(
            "SELECT pg_catalog.pg_get_wal_replay_pause_state(), "
            "pg_catalog.pg_last_wal_replay_lsn()::text"
        ).fetchone()
        if row is not None and row[0] == "paused":
            return str(row[1])
        if time.monotonic() >= deadline:
            raise ComponentError("replay did not pause in time")
        time.sleep(0.005)


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
