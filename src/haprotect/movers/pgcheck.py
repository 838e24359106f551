"""Is a PostgreSQL node a good backup source now? Replication state and lag.

A standby is judged from the standby alone: it is a good source when it is
in recovery, its WAL receiver is ``streaming`` (so it has heard from its
primary within ``wal_receiver_timeout``), and it has replayed close to
where the primary stands as far as the standby knows: the later of what it
has received (``pg_last_wal_receive_lsn()``) and the primary's WAL position
its WAL sender last reported (``pg_stat_wal_receiver.latest_end_lsn``). Lag
is that position minus ``pg_last_wal_replay_lsn()`` in bytes; in seconds,
``now() - pg_last_xact_replay_timestamp()``, counted as 0 when nothing is
left to replay (on an idle primary the last replayed transaction may be old
while the standby is fully caught up). The primary is not asked: a
streaming standby knows its position to within what is in flight.

A node's whole state is read in one query on one connection
(:func:`node_state`). Connections go over TCP to the host the inventory
gives, as the location's ``pguser`` (default ``postgres``), with
application name ``haprotect-check``; passwords come from libpq's usual
places (``.pgpass``, ``PGPASSWORD``). Inside the engine's shared scope a
server's connection is opened once (:mod:`haprotect.pgsession`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from haprotect import pgsession
from haprotect.errors import ComponentError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem, SourceHealth
from haprotect.model.snapshot import JSONValue
from haprotect.pgsession import one_line

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

    def params(self) -> dict[str, str]:
        """Its libpq connection parameters."""
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname}

    def connect(self, timeout: int = 5) -> psycopg.Connection[Any]:
        """A connection of the caller's own; ComponentError if it cannot be made."""
        return pgsession.connect(
            self.params(), application=CHECK_APPLICATION, where=str(self), timeout=timeout
        )

    @contextmanager
    def session(self, timeout: int = 5) -> Iterator[psycopg.Connection[Any]]:
        """A connection to it: the shared scope's if one is open, else one for the block."""
        with pgsession.session(self.params(), lambda: self.connect(timeout)) as conn:
            yield conn


def lsn_int(lsn: str) -> int:
    """``'0/3000060'`` -> its byte position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(frozen=True, slots=True)
class NodeState:
    """What a PostgreSQL node says of itself: its role, WAL receiver and positions."""

    in_recovery: bool
    server_version: str | None = None
    system_identifier: str | None = None
    wal_lsn: str | None = None  #: a primary's pg_current_wal_lsn(); None on a standby
    receiver: str | None = None  #: pg_stat_wal_receiver.status, None without a receiver
    sender: str | None = None  #: the host:port it streams from
    replay_lsn: str | None = None
    receive_lsn: str | None = None
    upstream_lsn: str | None = None  #: the primary's position, as its WAL sender last said
    upstream_age: float | None = None  #: seconds since the standby last heard from it
    replay_age: float | None = None  #: seconds since the last replayed transaction
    timeline: int | None = None

    @property
    def primary_lsn(self) -> str | None:
        """Where the primary stands as far as this standby knows (the later of two)."""
        known = [lsn for lsn in (self.receive_lsn, self.upstream_lsn) if lsn]
        return max(known, key=lsn_int) if known else None


_STATE_SQL = """
SELECT pg_is_in_recovery(),
       current_setting('server_version'),
       (SELECT system_identifier FROM pg_control_system())::text,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
       r.status,
       r.sender_host || ':' || r.sender_port,
       pg_last_wal_replay_lsn()::text,
       pg_last_wal_receive_lsn()::text,
       r.latest_end_lsn::text,
       EXTRACT(EPOCH FROM now() - r.last_msg_receipt_time)::float8,
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
       (SELECT timeline_id FROM pg_control_checkpoint())
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS r ON true
"""


def node_state(endpoint: Endpoint) -> NodeState:
    """The node's state, in one query (ComponentError if it cannot be asked)."""
    try:
        with endpoint.session() as conn:
            row = conn.execute(_STATE_SQL).fetchone()
    except psycopg.Error as exc:
        raise ComponentError(f"cannot query {endpoint}: {one_line(exc)}") from None
    if row is None:
        raise ComponentError(f"{endpoint} did not say what it is")
    return NodeState(
        bool(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        _seconds(row[9]),
        _seconds(row[10]),
        int(row[11]) if row[11] is not None else None,
    )


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


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
    try:
        with endpoint.session() as conn:
            row = conn.execute(f"SELECT pg_is_in_recovery(), {function}()::text").fetchone()
            if row is None or row[0]:
                raise ComponentError(f"{endpoint} is not a primary (it is in recovery)")
            if insert:
                with conn.transaction():
                    conn.execute("SET LOCAL synchronous_commit = on")
                    conn.execute("SELECT txid_current()")
            return str(row[1])
    except psycopg.Error as exc:
        raise ComponentError(f"cannot query {endpoint}: {one_line(exc)}") from None


def check_primary(endpoint: Endpoint) -> SourceHealth:
    try:
        state = node_state(endpoint)
    except ComponentError as exc:
        return SourceHealth(endpoint.node, False, exc.message)
    return judge_primary(endpoint.node, state)


def judge_primary(node: str, state: NodeState) -> SourceHealth:
    """A node asked as the primary: one that is not in recovery."""
    if state.in_recovery or state.wal_lsn is None:
        return SourceHealth(node, False, "is not a primary (it is in recovery)")
    lsn = state.wal_lsn
    return SourceHealth(node, True, f"primary, answers at {lsn}", 0.0, 0, {"primary_lsn": lsn})


def check_standby(standby: Endpoint, primary: str | None = None) -> SourceHealth:
    """How ``standby`` stands (streaming, positions, lag), asking the standby alone."""
    try:
        state = node_state(standby)
    except ComponentError as exc:
        return SourceHealth(standby.node, False, exc.message)
    return judge_standby(standby.node, state, primary)


def judge_standby(node: str, state: NodeState, primary: str | None = None) -> SourceHealth:
    """A standby's health from what it says of itself (``primary``: its name, for the text)."""
    if not state.in_recovery:
        return SourceHealth(node, False, "is not a standby (not in recovery)")
    positions: dict[str, JSONValue] = {
        "replay_lsn": state.replay_lsn,
        "receive_lsn": state.receive_lsn,
        "timeline": state.timeline,
    }
    if state.receiver != "streaming":
        receiver = state.receiver or "no WAL receiver"
        return SourceHealth(node, False, f"not streaming ({receiver})", positions=positions)
    upstream = state.primary_lsn
    positions["primary_lsn"] = upstream
    if state.upstream_age is not None:
        positions["primary_heard_seconds_ago"] = round(state.upstream_age, 3)
    lag_bytes: int | None = None
    if upstream is not None and state.replay_lsn is not None:
        lag_bytes = max(0, lsn_int(upstream) - lsn_int(state.replay_lsn))
    lag_seconds = 0.0 if lag_bytes == 0 else state.replay_age
    if lag_bytes is None:
        behind = "position of the primary unknown"
    else:
        seconds = f"{lag_seconds:.1f}s" if lag_seconds is not None else "? s"
        behind = f"{lag_bytes} B and {seconds} behind {primary or 'its primary'}"
    positions["lag_bytes"] = lag_bytes
    positions["lag_seconds"] = lag_seconds
    detail = f"streaming, replayed {state.replay_lsn}, {behind}"
    return SourceHealth(node, True, detail, lag_seconds, lag_bytes, positions)


def catch_up(standby: Endpoint, target_lsn: str, seconds: float) -> tuple[bool, str | None]:
    """Wait until ``standby`` replayed ``target_lsn``; (done, last replay position).

    One connection, asked every 50 ms.
    """
    deadline = time.monotonic() + seconds
    target = lsn_int(target_lsn)
    try:
        with standby.session() as conn:
            while True:
                row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
                last = str(row[0]) if row is not None and row[0] is not None else None
                if last is not None and lsn_int(last) >= target:
                    return True, last
                if time.monotonic() >= deadline:
                    return False, last
                time.sleep(0.05)
    except psycopg.Error as exc:
        raise ComponentError(f"cannot query {standby}: {one_line(exc)}") from None
