"""Connections the plug-ins share during one step of a run, opened once, closed together.

While a set's tiers are held and its cuts taken, a quiescer and a mover may
each have to talk to the same server (a database's primary: the quiescer's
``CHECKPOINT``, then the cut's WAL position). The engine opens a scope
around that step (:func:`shared`); inside it, every caller asking
:meth:`Sessions.get` for the same key is given the same open connection, and
leaving the scope closes them all. Outside a scope nothing is shared: a
caller opens its own connection and closes it when done.

The scope is the process's, not a context variable's, because quiescers
run in worker threads; a scope opened inside another is the outer one.
A connection is used by one caller at a time (the quiescers and the cuts of
a set run one after the other).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

log = logging.getLogger(__name__)

T = TypeVar("T")


class Sessions:
    """Open resources by key; :meth:`close` closes every one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Hashable, tuple[Any, Callable[[Any], None]]] = {}
        self.opened = 0  #: how many resources were opened (a broken one reopened counts again)

    def get(
        self,
        key: Hashable,
        open_: Callable[[], T],
        close: Callable[[T], None],
        usable: Callable[[T], bool] = lambda _: True,
    ) -> T:
        """The resource under ``key``, opened with ``open_`` if there is none or it broke."""
        with self._lock:
            found = self._open.get(key)
            if found is not None and usable(cast(T, found[0])):
                return cast(T, found[0])
            if found is not None:
                del self._open[key]
                _quietly(found[1], found[0])
            resource = open_()
            self._open[key] = (resource, cast(Callable[[Any], None], close))
            self.opened += 1
            return resource

    def close(self) -> None:
        """Close every open resource (a failure to close is logged, not raised)."""
        with self._lock:
            found, self._open = list(self._open.values()), {}
        for resource, close in found:
            _quietly(close, resource)


class _Slot:
    """The process's open scope."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: Sessions | None = None


_CURRENT = _Slot()


def current() -> Sessions | None:
    """The scope open now, if any."""
    return _CURRENT.sessions


@contextmanager
def shared() -> Iterator[Sessions]:
    """A scope whose connections are shared and closed at its end (the outer one if nested)."""
    with _CURRENT.lock:
        outer = _CURRENT.sessions
        if outer is None:
            _CURRENT.sessions = Sessions()
        sessions = _CURRENT.sessions
    assert sessions is not None
    if outer is not None:
        yield outer
        return
    try:
        yield sessions
    finally:
        with _CURRENT.lock:
            _CURRENT.sessions = None
        sessions.close()


def _quietly(close: Callable[[Any], None], resource: Any) -> None:
    try:
        close(resource)
    except Exception as exc:  # closing what may already be broken
        log.debug("closing %r: %s", resource, exc)
