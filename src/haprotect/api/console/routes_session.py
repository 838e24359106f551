"""Logging in with an API token, and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from haprotect.api.console.guard import Form, live_token, session_of, sessions_of
from haprotect.api.console.render import link, page
from haprotect.api.console.session import COOKIE, Session, new_session
from haprotect.api.state import catalog_of

router = APIRouter()


def keep(request: Request, response: Response, session: Session) -> None:
    """Set the session's cookie: signed, HttpOnly, SameSite=Strict, Secure over TLS."""
    sessions = sessions_of(request)
    response.set_cookie(
        COOKIE,
        sessions.encode(session),
        max_age=int(sessions.lifetime.total_seconds()),
        path=link(request, "dashboard"),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def forget(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path=link(request, "dashboard"),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def safe_then(request: Request, then: str | None) -> str:
    """Where to go after login: a page of the console, never another site."""
    home = link(request, "dashboard")
    if then and then.startswith(home) and not then.startswith("//") and "\\" not in then:
        return then
    return home


@router.get("/login", name="login_form")
def login_form(
    request: Request, then: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    session = session_of(request)
    if session is not None and session.token and live_token(request, session.token):
        return RedirectResponse(safe_then(request, then), status_code=303)
    fresh = session if session is not None and session.token is None else new_session()
    response = page(
        request,
        "login.html",
        title="Log in",
        csrf=fresh.csrf,
        then=safe_then(request, then),
        error=None,
    )
    keep(request, response, fresh)
    return response


@router.post("/login", name="login")
def login(request: Request, form: Form) -> Response:
    old = session_of(request)
    assert old is not None  # the form's CSRF check found it
    token = catalog_of(request).verify_token(form.get("token", "").strip())
    then = safe_then(request, form.get("then"))
    if token is None:
        return page(
            request,
            "login.html",
            title="Log in",
            status=401,
            csrf=old.csrf,
            then=then,
            error="The token is unknown or revoked.",
        )
    sessions_of(request).end(old)
    response = RedirectResponse(then, status_code=303)
    keep(request, response, new_session(token.name))
    return response


@router.post("/logout", name="logout")
def logout(request: Request, form: Form) -> Response:
    session = session_of(request)
    if session is not None:
        sessions_of(request).end(session)
    response = RedirectResponse(link(request, "login_form"), status_code=303)
    forget(request, response)
    return response
