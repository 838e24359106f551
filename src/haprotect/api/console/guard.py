"""Who is logged in, whether the role allows the page, and the CSRF check of every form.

A page needs a logged-in session whose token is still live (a revoked
token ends its sessions at their next request); without one, the browser
is sent to the login page. A role below the page's is refused with 403,
as the API refuses it. Every POST carries the session's CSRF token in a
hidden field; a form without it, or with another, is refused with 403
before anything else is looked at.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request

from haprotect.api.console.session import COOKIE, Session, Sessions
from haprotect.api.state import catalog_of
from haprotect.catalog.records import Role, Token

#: A form larger than this is refused (the console's forms are a few fields).
MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class LoginNeeded(Exception):
    """No live session: the browser goes to the login page, then back to ``then``."""

    def __init__(self, then: str) -> None:
        super().__init__(then)
        self.then = then


class Refused(Exception):
    """A request the console turns down, shown as a page with ``status``."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


@dataclass(frozen=True, slots=True)
class User:
    """The session of a request and the live token it logged in with."""

    session: Session
    token: Token

    @property
    def name(self) -> str:
        return self.token.name

    @property
    def role(self) -> Role:
        return self.token.role

    def may(self, role: Role) -> bool:
        return self.token.role.allows(role)


def sessions_of(request: Request) -> Sessions:
    sessions = request.app.state.sessions
    assert isinstance(sessions, Sessions)
    return sessions


def session_of(request: Request) -> Session | None:
    return sessions_of(request).decode(request.cookies.get(COOKIE))


def live_token(request: Request, name: str) -> Token | None:
    """The token named ``name``, unless it was revoked (names are never reused)."""
    found = next((t for t in catalog_of(request).tokens() if t.name == name), None)
    return None if found is None or found.revoked else found


def user(request: Request) -> User:
    """The logged-in user, or :class:`LoginNeeded`."""
    session = session_of(request)
    token = None if session is None or session.token is None else live_token(request, session.token)
    if session is None or token is None:
        then = request.url.path
        if request.url.query:
            then += f"?{request.url.query}"
        raise LoginNeeded(then)
    return User(session, token)


def require(role: Role) -> Callable[..., User]:
    """A dependency: the logged-in user, if the role allows ``role``'s pages, else 403."""

    def check(found: Annotated[User, Depends(user)]) -> User:
        if not found.may(role):
            raise Refused(
                403,
                f"token {found.name!r} has the role {found.role}; this needs {role}",
                f"log in with a token with the role {role} (or above)",
            )
        return found

    return check


async def form(request: Request) -> dict[str, str]:
    """The POSTed form's fields (the first value of each), once its CSRF token matched."""
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise Refused(415, "the console takes forms only", "submit the page's own form")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "the form is too large")
    try:
        fields = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=50
        )
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "the form could not be read", "submit the page's own form") from None
    values = {name: found[0] for name, found in fields.items()}
    session = session_of(request)
    sent = values.get("csrf", "")
    if session is None or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Refused(
            403,
            "the form's CSRF token is missing or does not match this session",
            "load the page again and resubmit it from there",
        )
    return values


Form = Annotated[dict[str, str], Depends(form)]
Viewer = Annotated[User, Depends(require(Role.VIEWER))]
Admin = Annotated[User, Depends(require(Role.ADMIN))]


def maybe_user(request: Request) -> User | None:
    """The logged-in user if there is one (for pages anyone may see, such as errors)."""
    try:
        return user(request)
    except LoginNeeded:
        return None
