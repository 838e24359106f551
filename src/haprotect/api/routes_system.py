"""``/healthz`` (no token) and ``/metrics`` (a viewer's token, unless metrics are open)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from haprotect.api import schemas
from haprotect.api.auth import Credentials, caller
from haprotect.api.errors import responses
from haprotect.api.state import catalog_of, control_of, state_of

router = APIRouter(tags=["system"])
#: The content type of Prometheus's text format.
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/healthz",
    summary="Whether the API answers and reaches its catalog (no token needed)",
    responses={503: responses()[503]},
)
def healthz(request: Request) -> schemas.Health:
    catalog = catalog_of(request)
    catalog.policies()
    return schemas.Health(status="ok", catalog=catalog.url)


@router.get(
    "/metrics",
    summary="Prometheus metrics of the protection (a viewer's token, or none if metrics are open)",
    response_class=Response,
    responses={
        **responses(),
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "metrics"},
    },
)
def metrics(request: Request, credentials: Credentials) -> Response:
    if not state_of(request).settings.metrics_open:
        caller(request, credentials)
    return Response(control_of(request).metrics_text(), media_type=PROMETHEUS)
