"""What the application holds: the catalog, the service's control, the settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import Request

from haprotect.api.control import ServiceControl
from haprotect.catalog.catalog import Catalog


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """How the web console keeps sessions.

    ``key`` signs the session cookies: a random one (the default) ends
    every session when the process ends; ``haprotect serve`` keeps one in
    its state directory. ``lifetime``: a session ends this long after login.
    """

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """How the API behaves.

    ``metrics_open``: ``/metrics`` answers without a token (for a scraper
    on a trusted network); by default it needs a viewer's bearer token.
    ``poll_seconds``: how often a stream of run events looks for new ones.
    ``keepalive_seconds``: a quiet stream sends a comment this often, so
    proxies keep it open. ``console``: the web console's sessions.
    """

    metrics_open: bool = False
    poll_seconds: float = 0.5
    keepalive_seconds: float = 15.0
    console: ConsoleSettings = field(default_factory=ConsoleSettings)


@dataclass(frozen=True, slots=True)
class AppState:
    catalog: Catalog
    control: ServiceControl
    settings: ApiSettings


def state_of(request: Request) -> AppState:
    state = request.app.state.haprotect
    assert isinstance(state, AppState)
    return state


def catalog_of(request: Request) -> Catalog:
    return state_of(request).catalog


def control_of(request: Request) -> ServiceControl:
    return state_of(request).control
