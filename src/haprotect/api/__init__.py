"""The REST API of ``haprotect serve`` (FastAPI).

Routes under ``/api/v1`` (status, policies, jobs, runs with their events as
server-sent events, sets, restores, alerts, tokens), ``/metrics`` and
``/healthz``; the OpenAPI document at ``/api/v1/openapi.json``; the web
console (:mod:`haprotect.api.console`) under ``/console``.

Terms:

control
    What the API needs of the running service (:class:`ServiceControl`):
    the jobs, the status, starting runs and restores, cancelling, metrics.
    The catalog it reads itself.
token
    A bearer token from the catalog; its role (viewer < operator < admin)
    decides what a request may do (:mod:`~haprotect.api.auth`).

Modules: ``control`` (the protocol), ``app`` (the application), ``auth``,
``errors``, ``schemas`` (bodies), ``views`` (status views as bodies),
``stream`` (server-sent events), one ``routes_*`` module per area,
``policy_review`` (summaries and diffs of policies, for the routes and the
console), ``openapi`` (the document, written to docs/api/openapi.json).

Importing this package imports FastAPI: only ``haprotect serve`` does.
"""

from __future__ import annotations

from haprotect.api.app import build_app, create_app
from haprotect.api.control import LATEST, RestoreRequest, ServiceControl
from haprotect.api.state import ApiSettings

__all__ = ["LATEST", "ApiSettings", "RestoreRequest", "ServiceControl", "build_app", "create_app"]
