"""Bearer tokens and roles: who calls, and whether the role allows the route.

A request carries ``Authorization: Bearer <secret>``; the catalog compares
the secret's SHA-256 with the stored hashes. No token, an unknown or a
revoked one: 401 with ``WWW-Authenticate: Bearer``. A role below the route's
(viewer < operator < admin): 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from haprotect.api.errors import BEARER, ApiError
from haprotect.api.state import catalog_of
from haprotect.catalog.records import Role, Token

bearer = HTTPBearer(auto_error=False, description="a token made by `haprotect token add`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def caller(request: Request, credentials: Credentials) -> Token:
    """The token of the request, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "no bearer token", "send Authorization: Bearer <token>", BEARER)
    token = catalog_of(request).verify_token(credentials.credentials)
    if token is None:
        raise ApiError(
            401, "the token is unknown or revoked", "ask an administrator for a token", BEARER
        )
    return token


def require(role: Role) -> Callable[..., Token]:
    """A dependency: the caller's token, if its role allows ``role``'s routes, else 403."""

    def check(token: Annotated[Token, Depends(caller)]) -> Token:
        if not token.role.allows(role):
            raise ApiError(
                403,
                f"token {token.name!r} has the role {token.role}; this needs {role}",
                f"use a token with the role {role} (or above)",
            )
        return token

    return check


Viewer = Annotated[Token, Depends(require(Role.VIEWER))]
Operator = Annotated[Token, Depends(require(Role.OPERATOR))]
Admin = Annotated[Token, Depends(require(Role.ADMIN))]
