"""What the catalog's verbs (policy, token) share: the --catalog option, opening it, JSON.

SQLAlchemy is imported only when a command opens the catalog, never to
print help.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from haprotect.errors import RegistryError

if TYPE_CHECKING:
    from haprotect.catalog.catalog import Catalog

CatalogOpt = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        metavar="URL",
        help="The catalog: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB. Default: "
        "$HAPROTECT_CATALOG, else the service config's catalog, else "
        "sqlite:///$HAPROTECT_STATE_DIR/catalog.db (/var/lib/haprotect).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@contextmanager
def opened(url: str | None) -> Iterator[Catalog]:
    """The catalog ``url`` names (or the one :func:`find_catalog` finds), upgraded and open."""
    from haprotect.catalog.location import find_catalog

    try:
        from haprotect.catalog.catalog import Catalog
    except ImportError as exc:
        raise RegistryError(
            f"the catalog needs the server extra ({exc.name} is not installed)",
            hint="pip install 'haprotect[server]'",
        ) from None
    from haprotect.catalog.errors import CatalogUnavailable

    location = find_catalog(url)
    try:
        catalog = Catalog.open(location.url)
    except CatalogUnavailable as exc:
        if location.origin == "--catalog":
            raise
        raise CatalogUnavailable(f"{exc.message} (from {location.origin})", hint=exc.hint) from None
    with catalog:
        yield catalog


def user() -> str:
    """Who runs the command, as recorded in the catalog (created_by, decided_by)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def to_json(record: Any) -> dict[str, Any]:
    """A catalog record (a dataclass) as JSON-ready data."""
    return {key: _plain(value) for key, value in asdict(record).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2)


def when(value: datetime | None) -> str:
    """A time as the tables show it (UTC, to the second)."""
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"
