"""A connection to a PostgreSQL server: the scope's shared one, else a fresh one.

Inside a :func:`haprotect.sessions.shared` scope (the engine opens one while
a set's tiers are held and cut), every connection to the same server as the
same user and database is one session: opened by the first caller, with its
application name, and closed when the scope ends, so that a quiescer's
``CHECKPOINT`` and a cut's WAL position on the primary take one connection
between them. Its callers leave it as they found it: autocommit, no open
transaction, every setting they changed reset. A session found closed, or
left inside a transaction, is replaced. Outside a scope each call opens a
connection and closes it when its block ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus

from haprotect import sessions as shared_sessions
from haprotect.errors import ComponentError
from haprotect.sessions import Sessions


class ConnectError(ComponentError):
    """A connection that could not be made; ``reason``: libpq's first line."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"cannot connect to PostgreSQL on {where}: {reason}")
        self.reason = reason


#: conninfo parameters that do not change which server and session are reached
_PER_CALLER = frozenset({"application_name", "connect_timeout"})


def server_key(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """What identifies a session: every parameter but the caller's own (its name, timeouts)."""
    return tuple(sorted((k, str(v)) for k, v in params.items() if k not in _PER_CALLER))


def connect(
    params: Mapping[str, str], *, application: str, where: str, timeout: int = 5
) -> psycopg.Connection[Any]:
    """A connection of the caller's own (autocommit) to the server ``params`` name.

    One that cannot be made raises a :class:`ConnectError` naming ``where``.
    """
    options = {k: v for k, v in params.items() if k not in _PER_CALLER}
    try:
        return psycopg.connect(
            make_conninfo(**options),
            connect_timeout=timeout,
            application_name=application,
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise ConnectError(where, one_line(exc)) from None


@contextmanager
def session(
    params: Mapping[str, str],
    open_: Callable[[], psycopg.Connection[Any]],
    *,
    sessions: Sessions | None = None,
) -> Iterator[psycopg.Connection[Any]]:
    """The scope's session to the server ``params`` name, else one ``open_`` makes for the block.

    ``sessions``: the scope to share in (default: the one open now, if any).
    What the caller's statements raise is psycopg's.
    """
    scope = sessions if sessions is not None else shared_sessions.current()
    if scope is None:
        with open_() as conn:
            yield conn
        return
    yield scope.get(("postgresql", server_key(params)), open_, _close, _usable)


def one_line(exc: BaseException) -> str:
    """The first line of an error's text (libpq's errors run over several)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _close(conn: psycopg.Connection[Any]) -> None:
    conn.close()


def _usable(conn: psycopg.Connection[Any]) -> bool:
    return not conn.closed and conn.info.transaction_status is TransactionStatus.IDLE
