"""Status, sets, alerts and tokens: what the service holds besides policies and runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from haprotect.api import schemas, views
from haprotect.api.auth import Admin, Operator, Viewer
from haprotect.api.errors import responses
from haprotect.api.state import catalog_of, control_of

status = APIRouter(prefix="/status", tags=["status"])
sets = APIRouter(prefix="/sets", tags=["sets"])
alerts = APIRouter(prefix="/alerts", tags=["alerts"])
tokens = APIRouter(prefix="/tokens", tags=["tokens"])

Limit = Annotated[int, Query(ge=1, le=500, description="at most this many")]
Offset = Annotated[int, Query(ge=0, le=100_000, description="skip this many")]


@status.get(
    "",
    summary="Protection per application and data set: last complete set, RPO, copies, drift",
    responses=responses(),
)
def show_status(request: Request, _: Viewer) -> schemas.Status:
    return views.status(control_of(request).status())


@sets.get("", summary="Sets seen in the repositories, newest first", responses=responses())
def list_sets(
    request: Request,
    _: Viewer,
    repository: Annotated[str | None, Query(description="only this repository's")] = None,
    application: Annotated[str | None, Query(description="only this application's")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> schemas.SetPage:
    found = catalog_of(request).sets(repository=repository, application=application)
    return schemas.SetPage(
        items=[schemas.SetRecord.model_validate(s) for s in found[offset : offset + limit]],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if len(found) > offset + limit else None,
    )


@alerts.get("", summary="Alerts, newest first", responses=responses())
def list_alerts(
    request: Request,
    _: Viewer,
    open_only: Annotated[bool, Query(alias="open", description="only those not acknowledged")] = (
        False
    ),
    limit: Limit = 100,
) -> list[schemas.Alert]:
    found = catalog_of(request).alerts(open_only=open_only, limit=limit)
    return [schemas.Alert.model_validate(a) for a in found]


@alerts.post(
    "/{alert_id}/acknowledge",
    summary="Acknowledge an alert (acknowledging twice changes nothing)",
    responses=responses(403, 404),
)
def acknowledge(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    token: Operator,
) -> schemas.Alert:
    return schemas.Alert.model_validate(
        catalog_of(request).acknowledge_alert(alert_id, by=token.name)
    )


@tokens.get("", summary="Every token (never a secret)", responses=responses(403))
def list_tokens(request: Request, _: Admin) -> list[schemas.Token]:
    return [schemas.Token.model_validate(t) for t in catalog_of(request).tokens()]


@tokens.post(
    "",
    summary="Make a token; its secret is in this answer and nowhere else",
    status_code=201,
    responses=responses(403, 409),
)
def add_token(request: Request, body: schemas.TokenBody, _: Admin) -> schemas.NewToken:
    made = catalog_of(request).add_token(body.name, body.role)
    return schemas.NewToken(token=schemas.Token.model_validate(made.token), secret=made.secret)


@tokens.delete(
    "/{name}",
    summary="Revoke a token: refused from now on (revoking twice changes nothing)",
    responses=responses(403, 404),
)
def revoke_token(request: Request, name: Annotated[str, Path()], _: Admin) -> schemas.Token:
    return schemas.Token.model_validate(catalog_of(request).revoke_token(name))
