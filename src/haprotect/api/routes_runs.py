"""Jobs and runs: list jobs, run one now, list and follow runs, cancel, start restores."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from haprotect.api import schemas, views
from haprotect.api.auth import Operator, Viewer
from haprotect.api.control import RestoreRequest
from haprotect.api.errors import responses
from haprotect.api.state import catalog_of, control_of, state_of
from haprotect.api.stream import event_body, follow
from haprotect.catalog.records import RunStatus

jobs = APIRouter(prefix="/jobs", tags=["jobs"])
runs = APIRouter(prefix="/runs", tags=["runs"])
restores = APIRouter(prefix="/restores", tags=["restores"])

RunId = Annotated[int, Path(ge=1, le=2**62, description="the run's id")]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many")]
Offset = Annotated[int, Query(ge=0, le=100_000, description="skip this many")]
EVENT_STREAM = "text/event-stream"
#: One server-sent event: a run's event as JSON, or (``event: end``) the run that ended.
EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "description": "the run event's id (for Last-Event-ID)"},
        "event": {"type": "string", "description": "the run event's kind, or end"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/RunEvent"},
                    {"$ref": "#/components/schemas/Run"},
                ]
            },
        },
    },
}


@jobs.get("", summary="Every job of the approved policies", responses=responses())
def list_jobs(request: Request, _: Viewer) -> list[schemas.Job]:
    return [views.job(j) for j in control_of(request).jobs()]


@jobs.post(
    "/{job:path}/run",
    summary="Run a job now (a manual run; queued while limits bind)",
    status_code=202,
    responses=responses(403, 404, 409),
)
def run_job(
    request: Request,
    job: Annotated[str, Path(description="group:<cluster>/<group> or item:<cluster>/<dataset>")],
    token: Operator,
) -> schemas.Started:
    return schemas.Started(run_id=control_of(request).start_job(job, by=token.name))


@runs.get("", summary="Runs, newest first, a page at a time", responses=responses())
def list_runs(
    request: Request,
    _: Viewer,
    job: Annotated[str | None, Query(description="only this job's runs")] = None,
    status: Annotated[list[RunStatus] | None, Query(description="only runs in these")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> schemas.RunPage:
    found = catalog_of(request).runs(job=job, statuses=status or (), limit=offset + limit + 1)
    page = found[offset : offset + limit]
    more = len(found) > offset + limit
    return schemas.RunPage(
        items=[schemas.Run.model_validate(r) for r in page],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
    )


@runs.get("/{run_id}", summary="One run", responses=responses(404))
def show_run(request: Request, run_id: RunId, _: Viewer) -> schemas.Run:
    return schemas.Run.model_validate(catalog_of(request).run(run_id))


@runs.get("/{run_id}/events", summary="A run's events, oldest first", responses=responses(404))
def list_events(
    request: Request,
    run_id: RunId,
    _: Viewer,
    after: Annotated[int, Query(ge=0, le=2**62, description="only events after this id")] = 0,
) -> list[schemas.RunEvent]:
    return [event_body(e) for e in catalog_of(request).events(run_id, after=after)]


@runs.get(
    "/{run_id}/events/stream",
    summary="A run's events as server-sent events, until the run ends",
    description="Replays the events after Last-Event-ID (all without it), then sends each "
    "new one as it is recorded; `event: end` with the run closes the stream.",
    response_class=StreamingResponse,
    responses={
        **responses(404),
        200: {
            "content": {EVENT_STREAM: {"schema": EVENT_SCHEMA}},
            "description": "the stream",
        },
    },
)
def stream_events(
    request: Request,
    run_id: RunId,
    _: Viewer,
    last_event_id: Annotated[
        int | None, Header(ge=0, le=2**62, description="resume after this event")
    ] = None,
) -> StreamingResponse:
    catalog_of(request).run(run_id)
    return StreamingResponse(
        follow(state_of(request), run_id, last_event_id or 0),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@runs.post(
    "/{run_id}/cancel",
    summary="Stop a queued or running run",
    responses=responses(403, 404, 409),
)
def cancel_run(request: Request, run_id: RunId, token: Operator) -> schemas.Run:
    control_of(request).cancel_run(run_id, by=token.name)
    return schemas.Run.model_validate(catalog_of(request).run(run_id))


@restores.post(
    "",
    summary="Start a restore (a run of its own; follow it under /api/v1/runs)",
    status_code=202,
    responses=responses(400, 403, 404, 409),
)
def start_restore(request: Request, body: schemas.RestoreBody, token: Operator) -> schemas.Started:
    wanted = RestoreRequest(
        application=body.application,
        set_id=body.set_id,
        tiers=tuple(body.tiers),
        target=body.target,
        repository=body.repository,
    )
    return schemas.Started(run_id=control_of(request).start_restore(wanted, by=token.name))
