"""The gate's state: open, held (new requests queue), replaying (the queue drains in order).

- **open**: requests pass at once, concurrently, counted as *in flight*
  until their response is relayed.
- **held**: a hold (with an id, a holder and a lease) was taken. Requests in
  flight finish; new ones wait in a FIFO queue, bounded by ``max_queue``.
  A request over the bound, or waiting longer than ``max_wait``, is
  answered 503 with ``Retry-After``: never dropped silently.
- **replaying**: after resume (or when the lease ran out), queued requests
  are forwarded one at a time, in arrival order, each after the previous
  one's response was relayed; requests arriving meanwhile queue behind
  them. When the queue is empty the gate is open again.

A hold that is not resumed or renewed within its lease is released by the
gate itself: that is what makes kill -9 of the backup safe. Everything runs
on one asyncio loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)


class GateState(StrEnum):
    """The gate's state (see the module docstring)."""

    OPEN = "open"
    HELD = "held"
    REPLAYING = "replaying"


class Conflict(Exception):
    """The gate is held by another hold id."""


class DrainTimeout(Exception):
    """In-flight requests did not finish in time; the hold was released."""


class Rejected(Exception):
    """A request the gate will not queue (or queued too long): answer 503."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class GateLimits:
    """The bounds on what a held gate queues, and what it tells the clients it turns away."""

    max_queue: int = 1000  #: requests that may wait while held
    max_wait: float = 30.0  #: seconds a request may wait in the queue
    retry_after: int = 2  #: seconds, sent with every 503


@dataclass(slots=True)
class Ticket:
    """One queued request."""

    arrived: float = field(default_factory=time.monotonic)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class Hold:
    """The hold a gate is under: who took it, and when its lease expires."""

    id: str
    holder: str
    lease: float
    held_at: float  #: time.time()
    expires: float  #: loop time
    timer: asyncio.TimerHandle | None = None


class Gate:
    """The gate's state machine: admits, queues and replays requests; holds, renews, releases.

    The server calls it from its one asyncio loop; it does no I/O itself.
    """

    def __init__(self, limits: GateLimits | None = None) -> None:
        self.limits = limits or GateLimits()
        self.state = GateState.OPEN
        self.hold: Hold | None = None
        self.queue: deque[Ticket] = deque()
        self.in_flight = 0
        self.last_release: dict[str, Any] | None = None
        self.counters = dict.fromkeys(
            ("forwarded", "queued", "replayed", "rejected_full", "rejected_wait", "holds"), 0
        ) | {"lease_expiries": 0}
        self._idle = asyncio.Event()
        self._idle.set()
        self._replayer: asyncio.Task[None] | None = None

    # -- requests ---------------------------------------------------------------

    async def admit(self) -> Ticket | None:
        """Wait for this request's turn; None when it passed at once. Raises Rejected."""
        if self.state is GateState.OPEN and not self.queue:
            self._start()
            return None
        if len(self.queue) >= self.limits.max_queue:
            self.counters["rejected_full"] += 1
            raise Rejected(
                "queue-full",
                f"paused for a consistent backup and {len(self.queue)} requests already wait; "
                f"retry after {self.limits.retry_after}s",
            )
        ticket = Ticket()
        self.queue.append(ticket)
        self.counters["queued"] += 1
        try:
            await asyncio.wait_for(ticket.go.wait(), self.limits.max_wait)
        except TimeoutError:
            if not ticket.go.is_set():
                self.queue.remove(ticket)
                self.counters["rejected_wait"] += 1
                raise Rejected(
                    "waited-too-long",
                    f"paused for a consistent backup; waited {self.limits.max_wait:g}s, "
                    f"retry after {self.limits.retry_after}s",
                ) from None
        except asyncio.CancelledError:
            if ticket.go.is_set():
                self.finish(ticket)
            elif ticket in self.queue:
                self.queue.remove(ticket)
            raise
        return ticket

    def finish(self, ticket: Ticket | None) -> None:
        """A request's response was relayed (or failed): it is no longer in flight."""
        self.in_flight -= 1
        self.counters["forwarded"] += 1
        if self.in_flight == 0:
            self._idle.set()
        if ticket is not None:
            ticket.done.set()

    def _start(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    # -- hold, renew, resume -----------------------------------------------------

    async def take(
        self, hold_id: str, holder: str, lease: float, drain_timeout: float
    ) -> dict[str, Any]:
        """Hold (or re-hold, same id) and wait for in-flight requests to finish."""
        if self.hold is not None and self.hold.id != hold_id:
            raise Conflict(f"the gate is held by {self.hold.holder} (hold {self.hold.id})")
        started = time.monotonic()
        if self.hold is None:
            self.hold = Hold(hold_id, holder, lease, time.time(), 0.0)
            self.state = GateState.HELD
            self.counters["holds"] += 1
            log.info("held by %s (hold %s, lease %gs)", holder, hold_id, lease)
        self._arm(lease)
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout)
        except TimeoutError:
            in_flight = self.in_flight
            if self.hold is not None and self.hold.id == hold_id:
                self._release("drain-timeout")
            raise DrainTimeout(
                f"{in_flight} requests still in flight after {drain_timeout:g}s; "
                "the gate released the hold"
            ) from None
        if self.hold is None or self.hold.id != hold_id:
            raise Conflict(f"hold {hold_id} was released while draining")
        return self.status() | {"drained_seconds": round(time.monotonic() - started, 3)}

    def renew(self, hold_id: str, lease: float) -> dict[str, Any]:
        if self.hold is None or self.hold.id != hold_id:
            raise Conflict(f"hold {hold_id} is not held ({self._why_not(hold_id)})")
        self._arm(lease)
        return self.status()

    async def resume(self, hold_id: str | None, wait: float = 0.0) -> dict[str, Any]:
        if self.hold is None:
            return self.status() | {"resumed": False, "reason": self._why_not(hold_id)}
        if hold_id is not None and self.hold.id != hold_id:
            # Not this caller's hold (its own ended before): nothing of its to release.
            reason = f"{self._why_not(hold_id)}; now held by {self.hold.holder}"
            return self.status() | {"resumed": False, "reason": reason}
        held_for = time.time() - self.hold.held_at
        queued = len(self.queue)
        self._release("resumed")
        if wait > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.wait_open(), wait)
        return self.status() | {
            "resumed": True,
            "held_seconds": round(held_for, 3),
            "queued_at_resume": queued,
        }

    async def wait_open(self) -> None:
        while self.state is not GateState.OPEN:
            await asyncio.sleep(0.02)

    def _arm(self, lease: float) -> None:
        assert self.hold is not None
        if self.hold.timer is not None:
            self.hold.timer.cancel()
        loop = asyncio.get_running_loop()
        hold_id = self.hold.id
        self.hold.lease = lease
        self.hold.expires = loop.time() + lease
        self.hold.timer = loop.call_later(lease, self._expire, hold_id)

    def _expire(self, hold_id: str) -> None:
        if self.hold is not None and self.hold.id == hold_id:
            self.counters["lease_expiries"] += 1
            log.warning("the lease of hold %s by %s expired: resuming", hold_id, self.hold.holder)
            self._release("lease-expired")

    def _release(self, reason: str) -> None:
        assert self.hold is not None
        if self.hold.timer is not None:
            self.hold.timer.cancel()
        self.last_release = {"id": self.hold.id, "reason": reason, "at": time.time()}
        log.info(
            "hold %s released (%s); %d requests to replay", self.hold.id, reason, len(self.queue)
        )
        self.hold = None
        self.state = GateState.REPLAYING if self.queue else GateState.OPEN
        if self.queue and (self._replayer is None or self._replayer.done()):
            self._replayer = asyncio.get_running_loop().create_task(self._replay())

    def _why_not(self, hold_id: str | None) -> str:
        """Why ``hold_id`` is not held: how it ended, if it was the last one."""
        last = self.last_release
        if last is not None and (hold_id is None or last["id"] == hold_id):
            return str(last["reason"])
        return "not held"

    async def _replay(self) -> None:
        """Forward the queue one request at a time, oldest first."""
        while self.state is GateState.REPLAYING and self.queue:
            ticket = self.queue.popleft()
            self._start()
            ticket.go.set()
            await ticket.done.wait()
            self.counters["replayed"] += 1
        if self.state is GateState.REPLAYING:
            self.state = GateState.OPEN

    # -- reporting -----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        hold = None
        if self.hold is not None:
            remaining = self.hold.expires - asyncio.get_running_loop().time()
            hold = {
                "id": self.hold.id,
                "holder": self.hold.holder,
                "held_at": self.hold.held_at,
                "lease_seconds": self.hold.lease,
                "lease_remaining": round(max(0.0, remaining), 3),
            }
        oldest = round(time.monotonic() - self.queue[0].arrived, 3) if self.queue else None
        return {
            "state": str(self.state),
            "in_flight": self.in_flight,
            "queued": len(self.queue),
            "oldest_wait": oldest,
            "hold": hold,
            "last_release": self.last_release,
            "counters": dict(self.counters),
            "limits": {
                "max_queue": self.limits.max_queue,
                "max_wait": self.limits.max_wait,
                "retry_after": self.limits.retry_after,
            },
        }
