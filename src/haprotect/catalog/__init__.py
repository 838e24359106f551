"""The catalog: what the protection service remembers.

Terms:

policy version
    One stored text of a policy (by ``metadata.name``), numbered from 1. It is
    *pending* until an administrator approves or rejects it; approving one
    *supersedes* the version approved before. Only the approved version of a
    policy runs.
run
    One execution of a job. A job is keyed by what it protects, never by a
    node: ``group:<cluster>/<group>`` (one snapshot set) or
    ``item:<cluster>/<dataset>``.
set
    A snapshot set seen in a repository, and the repositories it was copied
    to. Repositories describe themselves, so this part can be rebuilt.
token
    A bearer token of the API with a role (viewer, operator, admin); only
    the SHA-256 of its secret is stored.
alert
    A failure, a breached RPO or drift, until acknowledged.

The tables are SQLAlchemy models (:mod:`~haprotect.catalog.models`); their
schema is kept by Alembic migrations in this package, applied by
:meth:`Catalog.open`. SQLite is the default, PostgreSQL the choice for larger
installations. Importing this package loads no SQLAlchemy: :class:`Catalog`
is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from haprotect.catalog.errors import CatalogConflict, CatalogNotFound, CatalogUnavailable
from haprotect.catalog.records import (
    Alert,
    AlertKind,
    Applied,
    NewToken,
    PolicyVersion,
    Role,
    Run,
    RunEvent,
    RunStatus,
    SetRecord,
    Token,
    Trigger,
    VersionState,
)

if TYPE_CHECKING:
    from haprotect.catalog.catalog import Catalog

__all__ = [
    "Alert",
    "AlertKind",
    "Applied",
    "Catalog",
    "CatalogConflict",
    "CatalogNotFound",
    "CatalogUnavailable",
    "NewToken",
    "PolicyVersion",
    "Role",
    "Run",
    "RunEvent",
    "RunStatus",
    "SetRecord",
    "Token",
    "Trigger",
    "VersionState",
]


def __getattr__(name: str) -> Any:
    if name == "Catalog":
        from haprotect.catalog.catalog import Catalog

        return Catalog
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
