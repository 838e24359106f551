"""Is a PostgreSQL node a good backup source now? Replication state and lag.

A standby is a good source when it is in recovery, its WAL receiver is
``streaming``, and it has replayed close to the primary's position. Lag is
measured both ways: in bytes, the primary's ``pg_current_wal_lsn()`` minus
the standby's ``pg_last_wal_replay_lsn()``; in seconds, ``now() -
pg_last_xact_replay_timestamp()`` on the standby, counted as 0 when nothing
is left to replay (on an idle primary the last replayed transaction may be
old while the standby is fully caught up).

Connections are short, over TCP to the host the inventory gives, as the
location's ``pguser`` (default ``postgres``), with application name
``haprotect-check``; passwords come from libpq's usual places (``.pgpass``,
``PGPASSWORD``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from haprotect.errors import ComponentError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.model.snapshot import JSONValue

DEFAULT_PORT = "5432"
DEFAULT_USER = "postgres"
CHECK_APPLICATION = "haprotect-check"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a node's server listens, from the inventory and the location."""

    node: str
    host: str
    port: str
    user: str
    dbname: str = "postgres"

    @classmethod
    def of(cls, node: str, host: str, location: Mapping[str, str]) -> Endpoint:
        return cls(
            node,
            host,
            location.get("pgport") or DEFAULT_PORT,
            location.get("pguser") or DEFAULT_USER,
            location.get("pgdatabase") or "postgres",
        )

    @classmethod
    def of_item(cls, inventory: Inventory, item: PlanItem, node: str) -> Endpoint:
        """Where ``item``'s server listens on ``node``, as the inventory reaches it."""
        location = inventory.location(node, item.cluster, item.dataset, item.cluster_location)
        return cls.of(node, inventory.access(node).host, location)

    def __str__(self) -> str:
        return f"{self.node} ({self.host}:{self.port})"

    def connect(self, timeout: int = 5) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                dbname=self.dbname,
                connect_timeout=timeout,
                application_name=CHECK_APPLICATION,
                autocommit=True,
            )
        except psycopg.Error as exc:
            raise ComponentError(
                f"cannot connect to PostgreSQL on {self}: {one_line(exc)}"
            ) from None


def one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def lsn_int(lsn: str) -> int:
    """``'0/3000060'`` -> its byte position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(frozen=True, slots=True)
class StandbyState:
    """What a PostgreSQL node says about its recovery, WAL receiver and replay position."""

    in_recovery: bool
    receiver: str | None  #: pg_stat_wal_receiver.status, None without a receiver
    sender: str | None  #: the host:port it streams from
    replay_lsn: str | None
    receive_lsn: str | None
    replay_age: float | None  #: seconds since the last replayed transaction
    timeline: int | None


def standby_state(endpoint: Endpoint) -> StandbyState:
    with endpoint.connect() as conn:
        row = conn.execute(
            """
            SELECT pg_is_in_recovery(),
                   (SELECT status FROM pg_stat_wal_receiver),
                   (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver),
                   pg_last_wal_replay_lsn()::text,
                   pg_last_wal_receive_lsn()::text,
                   EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
                   (SELECT timeline_id FROM pg_control_checkpoint())
            """
        ).fetchone()
    assert row is not None
    return StandbyState(
        bool(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        float(row[5]) if row[5] is not None else None,
        int(row[6]) if row[6] is not None else None,
    )


def primary_lsn(endpoint: Endpoint, *, insert: bool = False) -> str:
    """The primary's WAL write position; with ``insert``, its insert position, which is past
    every commit it acknowledged even with ``synchronous_commit = off``.

    With ``insert`` the WAL up to that position is also flushed, so that
    standbys receive it: on an idle primary the last records (a
    running-transactions snapshot, say) can sit unflushed in a partly filled
    page for as long as nothing commits, and a standby waiting to replay up
    to the position would wait for nothing. A transaction that takes an id
    and commits synchronously flushes the WAL up to its commit record.
    """
    function = "pg_current_wal_insert_lsn" if insert else "pg_current_wal_lsn"
    with endpoint.connect() as conn:
        row = conn.execute(f"SELECT pg_is_in_recovery(), {function}()::text").fetchone()
        if row is None or row[0]:
            raise ComponentError(f"{endpoint} is not a primary (it is in recovery)")
        if insert:
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute("SELECT txid_current()")
        return str(row[1])


def check_primary(endpoint: Endpoint) -> SourceHealth:
    try:
        lsn = primary_lsn(endpoint)
    except ComponentError as exc:
        return SourceHealth(endpoint.node, False, exc.message)
    return SourceHealth(
        endpoint.node, True, f"primary, answers at {lsn}", 0.0, 0, {"primary_lsn": lsn}
    )


def check_standby(standby: Endpoint, primary: Endpoint | None) -> SourceHealth:
    """How ``standby`` stands against ``primary`` (streaming, positions, lag)."""
    try:
        state = standby_state(standby)
    except ComponentError as exc:
        return SourceHealth(standby.node, False, exc.message)
    if not state.in_recovery:
        return SourceHealth(standby.node, False, "is not a standby (not in recovery)")
    positions: dict[str, JSONValue] = {
        "replay_lsn": state.replay_lsn,
        "receive_lsn": state.receive_lsn,
        "timeline": state.timeline,
    }
    if state.receiver != "streaming":
        receiver = state.receiver or "no WAL receiver"
        return SourceHealth(standby.node, False, f"not streaming ({receiver})", positions=positions)
    lag_bytes: int | None = None
    behind = "position of the primary unknown"
    if primary is not None:
        try:
            lsn = primary_lsn(primary)
        except ComponentError as exc:
            behind = f"primary not checked: {exc.message}"
        else:
            positions["primary_lsn"] = lsn
            if state.replay_lsn is not None:
                lag_bytes = max(0, lsn_int(lsn) - lsn_int(state.replay_lsn))
    lag_seconds = 0.0 if lag_bytes == 0 else state.replay_age
    if lag_bytes is not None:
        seconds = f"{lag_seconds:.1f}s" if lag_seconds is not None else "? s"
        behind = f"{lag_bytes} B and {seconds} behind {primary.node if primary else '?'}"
    positions["lag_bytes"] = lag_bytes
    positions["lag_seconds"] = lag_seconds
    detail = f"streaming, replayed {state.replay_lsn}, {behind}"
    return SourceHealth(standby.node, True, detail, lag_seconds, lag_bytes, positions)


def catch_up(standby: Endpoint, target_lsn: str, seconds: float) -> tuple[bool, str | None]:
    """Wait until ``standby`` replayed ``target_lsn``; (done, last replay position)."""
    deadline = time.monotonic() + seconds
    last: str | None = None
    while True:
        last = standby_state(standby).replay_lsn
        if last is not None and lsn_int(last) >= lsn_int(target_lsn):
            return True, last
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(0.05)
