"""A throwaway PostgreSQL server on loopback, for tests of what keeps data in one.

The catalog's tests (and the service's) run against a real server: it is
made with ``initdb`` in a temporary directory, listens on a free port of
127.0.0.1 with trust authentication, and is stopped and removed on exit.
Under root it runs as the ``postgres`` system user (:mod:`haprotect.pgtools`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg

from haprotect.errors import ComponentError
from haprotect.pgtools import PgRunner, find_postgres, server_user
from haprotect.ports import free_ports

SUPERUSER = "haprotect"


class TemporaryPostgres:
    """``with TemporaryPostgres() as pg: url = pg.create_database("x")``: a fresh database."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="haprotect-pg-"))
        self.pgdata = self.root / "data"
        self.port = free_ports(1)[0]
        self.runner = PgRunner(find_postgres(), server_user(), self.root)

    def start(self) -> None:
        self.root.chmod(0o755)
        self.runner.chown(self.root)
        self.runner.run(
            "initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust", "--locale=C",
            "--encoding=UTF8",
        )  # fmt: skip
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
            )
        done = self.runner.run(
            "pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.root / "log"), "-w",
            "-t", "60", check=False, timeout=70,
        )  # fmt: skip
        if done.returncode != 0:
            log = (self.root / "log").read_text(errors="replace").strip().splitlines()
            raise ComponentError(
                f"PostgreSQL in {self.pgdata} did not start: {log[-1] if log else 'no log'}"
            )

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self.runner.run(
                "pg_ctl", "stop", "-D", str(self.pgdata), "-m", "immediate", check=False
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for ``database``."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; its URL."""
        conninfo = f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> TemporaryPostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
