"""The PostgreSQL pair: start a node in its role, stream, and switch roles.

A failover here is a clean switchover, the way an administrator moves the
primary on purpose: the old primary is stopped (a fast shutdown sends every
WAL record, the shutdown checkpoint included, to the connected standby), the
standby replays up to that checkpoint and is promoted, and only then does
the state file name the new primary, so the application tier's next flush
reaches it. Nothing committed is lost. The old primary then follows the new
one: ``pg_rewind`` first (usually "no rewind required" after a clean stop),
and a fresh ``pg_basebackup`` clone if that does not give a streaming
standby, since a working standby matters more than a fast one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from haprotect.errors import ComponentError, UsageError
from haprotect.lab.pgnode import PgNode
from haprotect.lab.shop import SCHEMA_SQL
from haprotect.lab.state import (
    DATABASE,
    REPLICATION_USER,
    LabState,
    NodeState,
    load_state,
    save_state,
)

Emit = Callable[[str, str, str | None], None]


class Replication:
    """Sets up streaming between the lab's two nodes, and switches their roles."""

    def __init__(self, emit: Emit, timeout: float = 60.0) -> None:
        self.emit = emit
        self.timeout = timeout

    def start_node(self, node: PgNode, upstream: NodeState | None) -> None:
        """Start ``node`` as the primary (no upstream) or as a standby of ``upstream``."""
        if node.running():
            return
        role = "primary" if upstream is None else f"standby of {upstream.name}"
        if upstream is not None:
            node.forget_slots()
        node.write_config(upstream)
        self.emit("start", f"starting PostgreSQL {node.name} as {role}", node.name)
        node.start()

    def setup_primary(self, primary: PgNode, standby: str) -> None:
        """The replication role, the shop database and table, a slot for the standby."""
        with primary.connect() as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (REPLICATION_USER,)
            ).fetchone():
                conn.execute(f"CREATE ROLE {REPLICATION_USER} WITH LOGIN REPLICATION")
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone():
                conn.execute(f"CREATE DATABASE {DATABASE}")
            if not conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (standby,)
            ).fetchone():
                conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (standby,))
        with primary.connect(DATABASE) as conn:
            conn.execute(SCHEMA_SQL)

    def wait_streaming(self, primary: PgNode, standby: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            state = primary.scalar(
                "SELECT state FROM pg_stat_replication WHERE application_name = %s", standby
            )
            if state == "streaming":
                return
            time.sleep(0.1)
        raise ComponentError(
            f"{standby} does not stream from {primary.name} after {self.timeout:.0f}s",
            hint=f"see {primary.paths.pg_log(standby)}",
        )

    def switch_over(self, state: LabState, old: PgNode, new: PgNode) -> LabState:
        """Make ``new`` the primary and ``old`` its standby; the state as saved after."""
        if not new.running() or not new.scalar("SELECT pg_is_in_recovery()"):
            raise UsageError(
                f"the standby {new.name} is not running as a standby",
                hint="run 'haprotect lab up' first",
            )
        if old.running():
            self.emit("stop", f"stopping the primary {old.name}", old.name)
            old.stop("fast")
            self._wait_replayed(new, old.checkpoint_lsn(), old)
        self.emit("promote", f"promoting {new.name}", new.name)
        new.promote()
        state = state.with_primary(new.name)
        save_state(state)
        self.setup_primary(new, old.name)
        self.rejoin(old, new)
        latest = load_state(state.root)
        return latest if latest is not None else state

    def _wait_replayed(self, standby: PgNode, lsn: str, old: PgNode) -> None:
        """Wait until the standby replayed the old primary's shutdown checkpoint."""
        self.emit("catch-up", f"waiting for {standby.name} to replay up to {lsn}", standby.name)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if standby.scalar("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", lsn):
                return
            time.sleep(0.1)
        self.emit("abort", f"{standby.name} did not catch up; restarting {old.name}", old.name)
        self.start_node(old, None)
        raise ComponentError(
            f"{standby.name} did not replay up to {lsn} in {self.timeout:.0f}s; "
            f"{old.name} stays the primary",
            hint=f"see {standby.log}",
        )

    def rejoin(self, old: PgNode, new: PgNode) -> None:
        """Make the stopped ``old`` a streaming standby of ``new``, by rewind or by clone."""
        try:
            self.emit("rewind", f"rewinding {old.name} to follow {new.name}", old.name)
            old.rewind_from(new.node)
            self.start_node(old, new.node)
            self.wait_streaming(new, old.name)
        except ComponentError as exc:
            self.emit(
                "reclone",
                f"pg_rewind did not give a streaming standby ({exc.message}); "
                f"cloning {old.name} from {new.name}",
                old.name,
            )
            old.stop("immediate")
            old.basebackup_from(new.node)
            self.start_node(old, new.node)
            self.wait_streaming(new, old.name)
