"""A PostgreSQL node judged as a backup source from what it says of itself alone."""

from __future__ import annotations

from haprotect.movers.pgcheck import NodeState, judge_primary, judge_standby


def streaming(**changes: object) -> NodeState:
    """A standby streaming from its primary, fully caught up, its last commit 300 s old."""
    state: dict[str, object] = {
        "in_recovery": True,
        "server_version": "16.4",
        "receiver": "streaming",
        "sender": "10.0.0.1:5432",
        "replay_lsn": "0/3000100",
        "receive_lsn": "0/3000100",
        "upstream_lsn": "0/3000100",
        "upstream_age": 4.0,
        "replay_age": 300.0,
        "timeline": 1,
    }
    state.update(changes)
    return NodeState(**state)  # type: ignore[arg-type]


def test_a_caught_up_standby_is_not_behind_however_old_its_last_commit() -> None:
    health = judge_standby("node2", streaming(), "node1")
    assert health.healthy
    assert (health.lag_bytes, health.lag_seconds) == (0, 0.0)
    assert health.positions["primary_lsn"] == "0/3000100"
    assert health.detail == "streaming, replayed 0/3000100, 0 B and 0.0s behind node1"


def test_wal_received_but_not_replayed_is_lag_in_bytes_and_replay_seconds() -> None:
    health = judge_standby("node2", streaming(receive_lsn="0/3000400", replay_age=12.5))
    assert health.healthy
    assert (health.lag_bytes, health.lag_seconds) == (0x300, 12.5)
    assert health.positions["primary_lsn"] == "0/3000400"
    assert "768 B and 12.5s behind its primary" in health.detail


def test_the_primary_position_its_sender_reported_counts_when_later_than_received() -> None:
    health = judge_standby(
        "node2", streaming(receive_lsn="0/3000100", upstream_lsn="1/0", replay_age=2.0)
    )
    assert health.lag_bytes == (1 << 32) - 0x3000100
    assert health.lag_seconds == 2.0
    assert health.positions["primary_lsn"] == "1/0"
    assert health.positions["primary_heard_seconds_ago"] == 4.0


def test_a_standby_that_is_not_streaming_is_refused() -> None:
    for receiver, said in (("waiting", "waiting"), (None, "no WAL receiver")):
        health = judge_standby("node2", streaming(receiver=receiver))
        assert not health.healthy
        assert health.detail == f"not streaming ({said})"


def test_a_node_out_of_recovery_is_no_standby_and_a_standby_is_no_primary() -> None:
    promoted = NodeState(in_recovery=False, wal_lsn="0/5000000")
    assert not judge_standby("node2", promoted).healthy
    assert judge_standby("node2", promoted).detail == "is not a standby (not in recovery)"
    primary = judge_primary("node2", promoted)
    assert primary.healthy and primary.positions == {"primary_lsn": "0/5000000"}
    assert not judge_primary("node1", streaming()).healthy


def test_an_unknown_replay_position_leaves_the_lag_unknown() -> None:
    health = judge_standby("node2", streaming(replay_lsn=None))
    assert health.healthy
    assert health.lag_bytes is None and health.lag_seconds == 300.0
    assert "position of the primary unknown" in health.detail
