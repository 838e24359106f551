"""Pages from Jinja2 templates, escaped everywhere, with the headers every console page gets.

Autoescaping is on for every template whatever its name, and an undefined
name is an error rather than an empty string. Every page is sent with a
content security policy that allows only the console's own styles, no
script and no framing, and is not cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from haprotect.api.console.guard import User

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def age(delta: timedelta | None) -> str:
    """``3d``, ``5h``, ``12m``, ``40s``: the largest unit that fits."""
    if delta is None:
        return "-"
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def stamp(moment: datetime | None) -> str:
    """A time as UTC to the minute, or ``-``."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def words(value: object) -> str:
    """An enum value or identifier in words: ``partially_failed`` -> ``partially failed``."""
    return str(value).replace("_", " ")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("haprotect.api.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(age=age, stamp=stamp, words=words)
    return env


ENVIRONMENT = _environment()


def link(request: Request, route: str, /, **params: Any) -> str:
    """The path of the console's route ``route``, under wherever the console is mounted.

    Values are percent-encoded (a policy's name may hold any character);
    a slash stays one, for the routes that take a name as a path.
    """
    root = str(request.scope.get("root_path", ""))
    quoted = {key: quote(str(value), safe="/") for key, value in params.items()}
    return root + str(request.app.url_path_for(route, **quoted))


def page(
    request: Request,
    template: str,
    *,
    title: str,
    who: User | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` as a whole page for ``who`` (None: not logged in)."""

    def url(route: str, /, **params: Any) -> str:
        return link(request, route, **params)

    html = ENVIRONMENT.get_template(template).render(
        title=title,
        who=who,
        url=url,
        here=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
