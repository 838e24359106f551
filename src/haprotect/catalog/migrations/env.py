"""Alembic's environment for the catalog: run on the connection the catalog opened.

:func:`haprotect.catalog.database.upgrade` passes its connection in
``config.attributes["connection"]``; there is no alembic.ini and no offline
(SQL script) mode.
"""

from __future__ import annotations

from alembic import context

from haprotect.catalog.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
