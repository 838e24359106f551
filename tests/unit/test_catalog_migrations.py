"""The catalog's migrations build the models' schema, and opening one upgrades it.

On SQLite and on a real PostgreSQL server: an empty database is upgraded to
the newest migration when the catalog opens, Alembic's comparison of the
upgraded database with the models finds no difference (a model changed
without a migration fails here), and SQLite runs with WAL and foreign keys.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from haprotect.catalog import Catalog, CatalogUnavailable, Trigger
from haprotect.catalog.database import HEAD, create, current, head, upgrade
from haprotect.catalog.models import Base
from haprotect.ports import free_ports
from haprotect.testing.pgserver import TemporaryPostgres

_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/catalog.db"
    server: TemporaryPostgres = request.getfixturevalue("postgres")
    return server.create_database(f"migrations_{next(_numbers)}")


def test_an_empty_database_is_upgraded_to_the_models_at_open(url: str) -> None:
    engine = create(url)
    assert current(engine) is None
    Catalog.open(url).close()
    assert current(engine) == head() is not None
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        tables = set(inspect(connection).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert {
        "policies",
        "policy_versions",
        "runs",
        "run_events",
        "sets",
        "tokens",
        "alerts",
    } <= tables
    engine.dispose()


def test_the_head_the_catalog_checks_at_open_is_the_migrations_head() -> None:
    assert head() == HEAD


def test_a_catalog_from_a_newer_haprotect_is_refused_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/catalog.db"
    Catalog.open(url).close()
    engine = create(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(CatalogUnavailable, match="at revision 9999, which this haprotect does not"):
        Catalog.open(url)


def test_opening_an_upgraded_catalog_again_keeps_its_data(url: str) -> None:
    with Catalog.open(url) as catalog:
        catalog.apply_policy("web", "one\n", by="a")
    engine = create(url)
    upgrade(engine)  # already at head: nothing to do
    engine.dispose()
    with Catalog.open(url) as catalog:
        assert [v.text for v in catalog.versions("web")] == ["one\n"]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = create(f"sqlite:///{tmp_path}/catalog.db")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_a_url_that_is_not_a_database_is_one_line() -> None:
    with pytest.raises(CatalogUnavailable, match="'nonsense' is not a database URL"):
        Catalog.open("nonsense")
    with pytest.raises(CatalogUnavailable, match="only SQLite and PostgreSQL"):
        Catalog.open("mysql://u@h/db")


def test_a_server_that_does_not_answer_is_one_line() -> None:
    port = free_ports(1)[0]
    with pytest.raises(CatalogUnavailable) as caught:
        Catalog.open(f"postgresql://nobody:secret@127.0.0.1:{port}/catalog")
    assert caught.value.message.startswith(
        f"catalog postgresql+psycopg://nobody:***@127.0.0.1:{port}/catalog: "
    )
    assert "\n" not in caught.value.message and "secret" not in caught.value.message


def test_a_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CatalogUnavailable, match="cannot make its directory"):
        Catalog.open(f"sqlite:///{tmp_path}/file/sub/catalog.db")


def test_writers_on_one_sqlite_catalog_wait_for_each_other(tmp_path: Path) -> None:
    """The service and a CLI command write at once: each waits its turn, none fails."""
    url = f"sqlite:///{tmp_path}/catalog.db"
    Catalog.open(url).close()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Catalog.open(url) as catalog:
                run = catalog.start_run(f"item:c1/d{n}", repository="r", trigger=Trigger.MANUAL)
                for i in range(30):
                    catalog.record_event(run.id, "progress", {"i": i})
                    catalog.apply_policy(f"p{n}", f"text {i}\n", by="t")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Catalog.open(url) as catalog:
        assert len(catalog.versions()) == 4 * 30
        assert sum(len(catalog.events(r.id)) for r in catalog.runs()) == 4 * 30


def test_importing_the_catalog_s_records_loads_no_sqlalchemy() -> None:
    code = (
        "import sys, haprotect.catalog as c; c.PolicyVersion; c.Role;"
        "print(any(m.split('.')[0] in ('sqlalchemy', 'alembic') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
