"""Errors as JSON ``{"error": ..., "hint": ...}`` with the status code that fits.

haprotect's own errors map by class: an unknown object 404, a change its
state forbids 409, a file or text that does not validate 422, other bad
requests 400, a component or the catalog unavailable 503. Request validation
(FastAPI's) is 422 in the same shape, naming the first bad field. A bug is
a 500 in the same shape, its traceback in the service's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from haprotect.api.schemas import Error
from haprotect.catalog.errors import CatalogConflict, CatalogNotFound
from haprotect.errors import ComponentError, HaprotectError, InputError, UsageError

BEARER = {"WWW-Authenticate": "Bearer"}
log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success, raised by a route or a dependency."""

    def __init__(
        self,
        status: int,
        error: str,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.hint = status, error, hint
        self.headers = dict(headers or {})


def status_of(exc: HaprotectError) -> int:
    if isinstance(exc, CatalogNotFound):
        return 404
    if isinstance(exc, CatalogConflict):
        return 409
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, ComponentError):
        return 503
    return 500


def answer(
    status: int, error: str, hint: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = Error(error=error, hint=hint).model_dump()
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


#: The error answers every route may give, for the OpenAPI document.
def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {
        400: "bad request (a body that is not JSON, say)",
        401: "no token, or an unknown or revoked one",
        403: "the token's role may not do this",
        404: "no such object",
        409: "the object's state forbids this",
        422: "the request or its text does not validate",
        503: "the catalog or the service is unavailable",
    }
    return {
        code: {"model": Error, "description": words[code]}
        for code in sorted({400, 401, 422, 503, *codes})
    }


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON shape."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return answer(exc.status, exc.error, exc.hint, exc.headers)

    async def haprotect_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HaprotectError)
        return answer(status_of(exc), exc.message, exc.hint)

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        message = f"{where}: {first.get('msg', 'invalid')}{more}" if where else "invalid request"
        return answer(422, message, "see the OpenAPI document at /api/v1/openapi.json")

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return answer(exc.status_code, str(exc.detail), None, exc.headers)

    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(500, f"internal error: {type(exc).__name__}", "see the service's log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HaprotectError, haprotect_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, bug)
