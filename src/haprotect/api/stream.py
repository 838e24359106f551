"""A run's events as server-sent events: replay, then follow until the run ends.

Each event is ``id: <event id>``, ``event: <kind>``, ``data: <the event as
JSON>``. A client that reconnects with ``Last-Event-ID`` gets what came after
that event. The catalog is polled, so events recorded by any process (the
service's child runs) are seen. When the run is final and every event has
been sent, one ``event: end`` carries the run and the stream closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from haprotect.api import schemas
from haprotect.api.state import AppState
from haprotect.catalog.records import RunEvent


def event_body(event: RunEvent) -> schemas.RunEvent:
    return schemas.RunEvent(
        id=event.id, run_id=event.run_id, at=event.at, kind=event.kind, payload=dict(event.payload)
    )


def frame(data: str, *, event: str, event_id: int | None = None) -> bytes:
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines.append("event: " + " ".join(event.split()))
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


async def follow(state: AppState, run_id: int, after: int) -> AsyncIterator[bytes]:
    """The frames of run ``run_id``'s events after event ``after``, until the run ends."""
    catalog, settings = state.catalog, state.settings
    quiet = 0.0
    while True:
        # The run's state first: if it is final now, every event it will have is recorded.
        run = await run_in_threadpool(catalog.run, run_id)
        events = await run_in_threadpool(catalog.events, run_id, after=after)
        for event in events:
            yield frame(event_body(event).model_dump_json(), event=event.kind, event_id=event.id)
            after = event.id
        if run.status.final:
            yield frame(schemas.Run.model_validate(run).model_dump_json(), event="end")
            return
        if events:
            quiet = 0.0
        elif quiet >= settings.keepalive_seconds:
            yield b": keep-alive\n\n"
            quiet = 0.0
        await asyncio.sleep(settings.poll_seconds)
        quiet += settings.poll_seconds
