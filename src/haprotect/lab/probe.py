"""Asking each lab process how it is: PostgreSQL's own views, the tiers' /health."""

from __future__ import annotations

from typing import Any

import psycopg

from haprotect.errors import ComponentError
from haprotect.lab.client import HttpFailure, get_json
from haprotect.lab.pgnode import PgNode
from haprotect.lab.report import NodeStatus, ReplicationPeer, TierStatus

_REPLICATION_SQL = """
SELECT application_name, state, sync_state, sent_lsn::text, replay_lsn::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
FROM pg_stat_replication ORDER BY application_name
"""


def probe_node(node: PgNode, expected_role: str) -> NodeStatus:
    base: dict[str, Any] = {
        "name": node.name,
        "port": node.node.port,
        "pgdata": node.node.pgdata,
        "expected_role": expected_role,
    }
    pid = node.pid()
    if pid is None:
        return NodeStatus(**base, running=False)
    base.update(running=True, pid=pid)
    try:
        with node.connect() as conn:
            in_recovery = bool(_one(conn, "SELECT pg_is_in_recovery()"))
            if not in_recovery:
                rows = conn.execute(_REPLICATION_SQL).fetchall()
                return NodeStatus(
                    **base,
                    role="primary",
                    wal_lsn=_one(conn, "SELECT pg_current_wal_lsn()::text"),
                    replicas=tuple(ReplicationPeer(*row) for row in rows),
                )
            receiver = conn.execute(
                "SELECT status, sender_port FROM pg_stat_wal_receiver"
            ).fetchone()
            return NodeStatus(
                **base,
                role="standby",
                wal_lsn=_one(conn, "SELECT pg_last_wal_replay_lsn()::text"),
                receive_lsn=_one(conn, "SELECT pg_last_wal_receive_lsn()::text"),
                wal_receiver=receiver[0] if receiver else None,
                upstream_port=receiver[1] if receiver else None,
            )
    except (ComponentError, psycopg.Error) as exc:
        return NodeStatus(**base, error=str(exc).strip().splitlines()[0])


def _one(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


def probe_tier(name: str, url: str, pid: int | None) -> TierStatus:
    if pid is None:
        return TierStatus(name, url, running=False)
    try:
        detail = get_json(f"{url}/health", timeout=5.0)
    except (HttpFailure, ValueError) as exc:
        return TierStatus(name, url, running=True, pid=pid, detail={"error": str(exc)})
    healthy = isinstance(detail, dict) and detail.get("status") == "ok"
    return TierStatus(name, url, running=True, pid=pid, healthy=healthy, detail=dict(detail))
