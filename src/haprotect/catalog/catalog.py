"""The :class:`Catalog`: the service's memory of policies, runs, sets, tokens and alerts.

Every method is one transaction and returns records
(:mod:`haprotect.catalog.records`), never rows. Time comes from the injected
clock, so tests decide it. The errors are those of :mod:`haprotect.catalog.base`.
"""

from __future__ import annotations

from types import TracebackType

from haprotect.catalog import database
from haprotect.catalog.base import Clock, utc_now
from haprotect.catalog.holdings import AlertStore, SetStore, TokenStore
from haprotect.catalog.policies import PolicyStore
from haprotect.catalog.runs import RunStore


class Catalog(PolicyStore, RunStore, SetStore, TokenStore, AlertStore):
    """The catalog on one database; open it with :meth:`open`, close it (or use ``with``)."""

    @classmethod
    def open(cls, url: str, *, clock: Clock = utc_now) -> Catalog:
        """Open the catalog at ``url``, upgrading its schema to the newest migration."""
        engine = database.create(url)
        try:
            database.upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
