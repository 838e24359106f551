"""The catalog's base: its engine, its clock, and one transaction per call.

A database failure is a :class:`~haprotect.catalog.errors.CatalogUnavailable`;
an unknown name a :class:`~haprotect.catalog.errors.CatalogNotFound`; a change
the object's state forbids (approving a rejected version) a
:class:`~haprotect.catalog.errors.CatalogConflict`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from haprotect.catalog import database
from haprotect.catalog.errors import CatalogUnavailable

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class CatalogBase:
    """The engine, the clock and transactions that the parts of the catalog share."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._clock = clock

    @property
    def url(self) -> str:
        """Where the catalog is, without a password."""
        return database.describe(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        try:
            with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as exc:
            raise CatalogUnavailable(f"catalog {self.url}: {database.one_line(exc)}") from None
