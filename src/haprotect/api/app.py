"""The FastAPI application: the routes under ``/api/v1``, ``/metrics``, ``/healthz``,
and the web console under ``/console`` (``/`` leads there)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse

from haprotect import __version__
from haprotect.api import errors, routes_holdings, routes_policies, routes_runs, routes_system
from haprotect.api.console import MOUNT, build_console
from haprotect.api.control import ServiceControl
from haprotect.api.state import ApiSettings, AppState
from haprotect.catalog.catalog import Catalog

PREFIX = "/api/v1"
DESCRIPTION = """\
The protection service's API. Every route under /api/v1 needs a bearer token
(`Authorization: Bearer <secret>`, made by `haprotect token add`) whose role
allows it: viewer reads, operator also runs backups and restores and
acknowledges alerts, admin also applies and reviews policies and manages
tokens. No token, or an unknown or revoked one: 401; a role too low: 403.
Every error is `{"error": ..., "hint": ...}`.
"""

TAGS = [
    {"name": "status", "description": "protection per application and data set"},
    {"name": "policies", "description": "versions of policies and their review"},
    {"name": "jobs", "description": "what the scheduler runs, and running it now"},
    {"name": "runs", "description": "runs of jobs and restores, their events, live progress"},
    {"name": "sets", "description": "snapshot sets seen in the repositories"},
    {"name": "restores", "description": "starting a restore"},
    {"name": "alerts", "description": "failures, breached RPOs and drift"},
    {"name": "tokens", "description": "bearer tokens and their roles"},
    {"name": "system", "description": "health and Prometheus metrics"},
]


def build_app() -> FastAPI:
    """The application without a catalog or service (enough for its OpenAPI document)."""
    app = FastAPI(
        title="haprotect",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        openapi_tags=TAGS,
        generate_unique_id_function=lambda route: route.name,
    )
    errors.install(app)
    v1 = APIRouter(prefix=PREFIX)
    for router in (
        routes_holdings.status,
        routes_policies.router,
        routes_runs.jobs,
        routes_runs.runs,
        routes_holdings.sets,
        routes_runs.restores,
        routes_holdings.alerts,
        routes_holdings.tokens,
    ):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(routes_system.router)
    return app


def create_app(
    catalog: Catalog, control: ServiceControl, settings: ApiSettings | None = None
) -> FastAPI:
    """The API of a service: its catalog, its control and the settings."""
    app = build_app()
    attach(app, catalog, control, settings)
    return app


def attach(
    app: FastAPI, catalog: Catalog, control: ServiceControl, settings: ApiSettings | None = None
) -> None:
    """Give an application from :func:`build_app` what it serves, and mount the console."""
    state = AppState(catalog, control, settings or ApiSettings())
    app.state.haprotect = state
    app.mount(MOUNT, build_console(state))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{MOUNT}/", status_code=307)
