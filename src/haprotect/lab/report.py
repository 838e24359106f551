"""What the lab tells its caller: progress events and the status of every tier.

The lab never prints. Each step emits a :class:`LabEvent` to the callback
given to :class:`~haprotect.lab.lab.Lab` (and logs it); ``status()``
returns a :class:`LabStatus`, which the CLI renders as a table or JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LabEvent:
    """One step of a lab operation, for its caller's callback."""

    step: str  #: a short name: "initdb", "start", "basebackup", "promote", ...
    message: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class ReplicationPeer:
    """One row of ``pg_stat_replication`` on the primary."""

    application_name: str
    state: str
    sync_state: str
    sent_lsn: str | None
    replay_lsn: str | None
    replay_lag_bytes: int | None


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One PostgreSQL node: its role as the lab's state says and as the server answers."""

    name: str
    port: int
    pgdata: str
    expected_role: str  #: "primary" or "standby", as the lab's state says
    running: bool
    pid: int | None = None
    role: str | None = None  #: what the server says (pg_is_in_recovery), None if it did not answer
    wal_lsn: str | None = None  #: current WAL position on a primary, replay position on a standby
    receive_lsn: str | None = None  #: standby: last WAL received
    wal_receiver: str | None = None  #: standby: pg_stat_wal_receiver.status
    upstream_port: int | None = None  #: standby: the port it streams from
    replicas: tuple[ReplicationPeer, ...] = ()
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.running and self.role == self.expected_role and self.error is None


@dataclass(frozen=True, slots=True)
class TierStatus:
    """The application or web tier: whether its process runs and its health check passes."""

    name: str  #: "application" or "web"
    url: str
    running: bool
    pid: int | None = None
    healthy: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LabStatus:
    """What ``lab status`` shows: every node and tier, and the CIB file."""

    dir: str
    primary: str
    standby: str
    nodes: tuple[NodeStatus, ...]
    tiers: tuple[TierStatus, ...]
    cib: str

    def node(self, name: str) -> NodeStatus:
        return next(n for n in self.nodes if n.name == name)

    def tier(self, name: str) -> TierStatus:
        return next(t for t in self.tiers if t.name == name)

    @property
    def streaming(self) -> bool:
        """The primary sends WAL to the standby, and the standby receives it."""
        primary, standby = self.node(self.primary), self.node(self.standby)
        peers = [p for p in primary.replicas if p.application_name == self.standby]
        return any(p.state == "streaming" for p in peers) and standby.wal_receiver == "streaming"

    @property
    def healthy(self) -> bool:
        return (
            all(n.healthy for n in self.nodes)
            and self.streaming
            and all(t.healthy for t in self.tiers)
        )

    @property
    def running(self) -> bool:
        """Whether any lab process runs."""
        return any(n.running for n in self.nodes) or any(t.running for t in self.tiers)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["streaming"] = self.streaming
        data["healthy"] = self.healthy
        return data
