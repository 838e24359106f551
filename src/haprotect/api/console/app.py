"""The console as an application of its own, mounted under the API's at ``/console``.

It shares the API's state (catalog, control, settings), so its pages read
what the API's routes read; its own are the sessions and the error pages
(HTML where the API answers JSON).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from haprotect.api.console import routes_pages, routes_session
from haprotect.api.console.guard import LoginNeeded, Refused, maybe_user
from haprotect.api.console.render import link, page
from haprotect.api.console.session import Sessions
from haprotect.api.errors import ApiError, status_of
from haprotect.api.state import AppState
from haprotect.errors import HaprotectError

STATIC = "static"
TITLES = {401: "Refused", 403: "Refused", 404: "Not found"}
log = logging.getLogger(__name__)


def build_console(state: AppState) -> FastAPI:
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.haprotect = state
    console.state.sessions = Sessions(state.settings.console.key, state.settings.console.lifetime)
    console.include_router(routes_session.router)
    console.include_router(routes_pages.router)
    console.mount(
        "/static", StaticFiles(packages=[("haprotect.api.console", STATIC)]), name="static"
    )
    install(console)
    return console


def error_page(request: Request, status: int, message: str, hint: str | None = None) -> Response:
    return page(
        request,
        "error.html",
        title=TITLES.get(status, "Error"),
        who=maybe_user(request),
        status=status,
        message=message,
        hint=hint,
    )


def install(console: FastAPI) -> None:
    """Errors as pages: a missing login sends to the login page, the rest say what went wrong."""

    async def login_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginNeeded)
        where = f"{link(request, 'login_form')}?then={quote(exc.then, safe='/')}"
        return RedirectResponse(where, status_code=303, headers={"Cache-Control": "no-store"})

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return error_page(request, exc.status, exc.message, exc.hint)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_page(request, exc.status, exc.error, exc.hint)

    async def haprotect_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HaprotectError)
        return error_page(request, status_of(exc), exc.message, exc.hint)

    async def not_valid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_page(request, 404, "no such page", "start from the dashboard")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, message)

    async def bug(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_page(request, 500, f"internal error: {type(exc).__name__}", "see the log")

    console.add_exception_handler(LoginNeeded, login_needed)
    console.add_exception_handler(Refused, refused)
    console.add_exception_handler(ApiError, api_error)
    console.add_exception_handler(HaprotectError, haprotect_error)
    console.add_exception_handler(RequestValidationError, not_valid)
    console.add_exception_handler(HTTPException, http_error)
    console.add_exception_handler(Exception, bug)
