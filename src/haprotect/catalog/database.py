"""Opening the catalog's database: the URL, SQLite's settings, migrations to head.

``sqlite:///PATH`` (the default; its directory is made) runs in WAL mode
with foreign keys on and waits for a writer rather than failing;
``postgresql://`` and ``postgresql+psycopg://`` use psycopg 3. The schema is
upgraded to the newest migration every time the catalog is opened, so an
upgraded haprotect upgrades its catalog by itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from haprotect.catalog.errors import CatalogUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The newest migration's revision (a test holds it to the migrations): a catalog
#: already there is opened without loading Alembic, which takes a while to import.
HEAD = "0001"
BUSY_TIMEOUT_MS = 10_000
#: How long to wait for a PostgreSQL server to answer before saying it does not.
CONNECT_TIMEOUT_S = 10


def normalized_url(url: str) -> str:
    """``url`` with psycopg 3 as PostgreSQL's driver when none is named."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogUnavailable(
            f"catalog URL {url!r} is not a database URL",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise CatalogUnavailable(
            f"catalog URL {parsed.render_as_string(hide_password=True)!r}: "
            "only SQLite and PostgreSQL are supported",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
        )
    return parsed.render_as_string(hide_password=False)


def create(url: str) -> Engine:
    """An engine for ``url`` (see the module), not yet connected."""
    url = normalized_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            try:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogUnavailable(
                    f"catalog {parsed.database}: cannot make its directory: {exc.strerror}"
                ) from None
        # The driver's own transaction handling off (it begins a transaction only
        # at the first write, so a check and the write it allows would not be
        # one transaction), and every transaction begins IMMEDIATE: it takes
        # the write lock up front, waiting for it (busy_timeout) rather than
        # failing when it upgrades from reading. WAL keeps plain readers free.
        engine = create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "isolation_level": None}
        )
        event.listen(engine, "connect", _sqlite_settings)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(
        url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
    )


def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str | None:
    """The newest migration's revision, as Alembic finds it."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: an empty database)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if found is None else str(found)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there)."""
    try:
        at = current(engine)
    except SQLAlchemyError as exc:
        raise CatalogUnavailable(f"catalog {describe(engine)}: {one_line(exc)}") from None
    if at == HEAD:
        return
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise CatalogUnavailable(f"catalog {describe(engine)}: {one_line(exc)}") from None
    except CommandError:
        raise CatalogUnavailable(
            f"catalog {describe(engine)}: its schema is at revision {at}, which this "
            f"haprotect does not know (it knows up to {HEAD})",
            hint="a newer haprotect upgraded it: run that version",
        ) from None


def describe(engine: Engine) -> str:
    """The engine's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def one_line(exc: BaseException) -> str:
    """A database error's first line, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None)
    said = str(orig if orig is not None else exc).strip()
    return said.splitlines()[0] if said else type(exc).__name__
