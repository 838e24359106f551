"""One connection per server inside a shared scope; a connection per call outside one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg.pq import TransactionStatus

from haprotect import sessions
from haprotect.pgsession import server_key, session
from haprotect.sessions import Sessions

PRIMARY = {"host": "10.0.0.1", "port": "5432", "user": "postgres", "dbname": "postgres"}


@dataclass
class FakeInfo:
    transaction_status: TransactionStatus = TransactionStatus.IDLE


@dataclass
class FakeConnection:
    """What the sessions look at of a connection: closed, its transaction, close()."""

    name: str
    closed: bool = False
    info: FakeInfo = field(default_factory=FakeInfo)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Opener:
    """Opens fake connections, counting them."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []

    def __call__(self, name: str = "c") -> Any:
        def open_() -> Any:
            conn = FakeConnection(f"{name}{len(self.opened)}")
            self.opened.append(conn)
            return conn

        return open_


def test_a_scope_gives_every_caller_of_one_server_the_same_connection() -> None:
    opener, scope = Opener(), Sessions()
    quiescer = {**PRIMARY, "application_name": "haprotect-quiesce", "connect_timeout": "30"}
    with session(quiescer, opener("q"), sessions=scope) as first:
        pass
    with session(PRIMARY, opener("cut"), sessions=scope) as second:
        pass
    assert first is second
    assert not first.closed
    assert len(opener.opened) == 1 and scope.opened == 1
    standby = {**PRIMARY, "host": "10.0.0.2"}
    with session(standby, opener("s"), sessions=scope) as third:
        assert third is not first
    scope.close()
    assert all(conn.closed for conn in opener.opened)


def test_a_broken_or_busy_session_is_replaced() -> None:
    opener, scope = Opener(), Sessions()
    with session(PRIMARY, opener(), sessions=scope) as first:
        first.info.transaction_status = TransactionStatus.INERROR
    with session(PRIMARY, opener(), sessions=scope) as second:
        assert second is not first
        second.close()
    with session(PRIMARY, opener(), sessions=scope) as third:
        assert third is not second
    assert first.closed and scope.opened == 3


def test_outside_a_scope_each_call_opens_and_closes_its_own() -> None:
    opener = Opener()
    assert sessions.current() is None
    with session(PRIMARY, opener()) as first:
        assert not first.closed
    with session(PRIMARY, opener()) as second:
        pass
    assert first is not second and first.closed and second.closed


def test_the_shared_scope_is_the_process_s_closes_at_its_end_and_nests() -> None:
    opener = Opener()
    with sessions.shared() as outer:
        with sessions.shared() as inner:
            assert inner is outer
        with session(PRIMARY, opener()) as first:
            pass
        assert sessions.current() is outer and not first.closed
    assert sessions.current() is None
    assert first.closed


def test_what_names_a_session_leaves_out_the_caller_s_name_and_timeout() -> None:
    named = {**PRIMARY, "application_name": "x", "connect_timeout": "3"}
    assert server_key(named) == server_key(PRIMARY)
    assert server_key({**PRIMARY, "options": "-c search_path=a"}) != server_key(PRIMARY)
