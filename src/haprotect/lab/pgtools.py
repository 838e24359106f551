"""PostgreSQL's programs for the lab: they live in :mod:`haprotect.pgtools`.

The lab and the PostgreSQL mover share them; this module keeps the lab's
old import path working.
"""

from __future__ import annotations

from haprotect.pgtools import (
    BINDIR_ENV,
    DEBIAN_ROOT,
    REQUIRED,
    SYSTEM_USER,
    PgBinaries,
    PgRunner,
    binaries_for,
    find_postgres,
    server_user,
)

__all__ = [
    "BINDIR_ENV",
    "DEBIAN_ROOT",
    "REQUIRED",
    "SYSTEM_USER",
    "PgBinaries",
    "PgRunner",
    "binaries_for",
    "find_postgres",
    "server_user",
]
