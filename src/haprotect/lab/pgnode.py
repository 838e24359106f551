"""One PostgreSQL server of the lab: a data directory, a port, a role.

Every node's ``postgresql.conf`` includes ``lab.conf`` from its data
directory. The lab rewrites that file before every start, because it holds
what differs per node (port, ``cluster_name``) and per role (a standby's
``primary_conninfo`` and slot): ``pg_basebackup`` and ``pg_rewind`` copy the
source's files, so nothing node-specific may live anywhere else.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import psycopg

from haprotect.errors import ComponentError
from haprotect.lab.processes import alive, terminate
from haprotect.lab.state import REPLICATION_USER, SUPERUSER, LabPaths, NodeState
from haprotect.pgtools import PgBinaries, PgRunner

LAB_CONF = "lab.conf"
INCLUDE_LINE = f"include_if_exists = '{LAB_CONF}'\t# haprotect lab: node and role settings\n"

_COMMON_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "wal_level": "replica",
    "hot_standby": "on",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "'256MB'",
    "wal_log_hints": "on",
    "hot_standby_feedback": "on",
    "max_connections": "40",
    "shared_buffers": "'32MB'",
    "logging_collector": "off",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "recovery_target_timeline": "'latest'",
}


class PgNode:
    """One PostgreSQL server of the lab: set up, started, stopped, promoted, copied."""

    def __init__(self, runner: PgRunner, node: NodeState, paths: LabPaths) -> None:
        self.runner = runner
        self.node = node
        self.paths = paths
        self.pgdata = Path(node.pgdata)
        self.log = paths.pg_log(node.name)

    @property
    def name(self) -> str:
        return self.node.name

    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def prepare_dir(self) -> None:
        node_dir = self.pgdata.parent
        node_dir.mkdir(parents=True, exist_ok=True)
        node_dir.chmod(0o700)
        self.runner.chown(node_dir)

    def initdb(self) -> None:
        self.prepare_dir()
        self.runner.run(
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--data-checksums",
        )
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n" + INCLUDE_LINE)

    def write_config(self, primary: NodeState | None) -> None:
        """Settings for this node as the primary (``primary`` None) or a standby of ``primary``."""
        settings = {
            **_COMMON_SETTINGS,
            "port": str(self.node.port),
            "unix_socket_directories": f"'{self.paths.run}'",
            "cluster_name": f"'{self.name}'",
        }
        if primary is not None:
            conninfo = (
                f"host=127.0.0.1 port={primary.port} user={REPLICATION_USER} "
                f"application_name={self.name}"
            )
            settings["primary_conninfo"] = f"'{conninfo}'"
            settings["primary_slot_name"] = f"'{self.name}'"
        lines = [f"# Written by haprotect lab for {self.name}; rewritten before every start."]
        lines += [f"{key} = {value}" for key, value in settings.items()]
        self._write(self.pgdata / LAB_CONF, "\n".join(lines) + "\n")
        standby_signal = self.pgdata / "standby.signal"
        if primary is not None:
            self._write(standby_signal, "")
        else:
            standby_signal.unlink(missing_ok=True)

    def forget_slots(self) -> None:
        """Drop every replication slot while stopped: a standby keeps none of its own."""
        slots = self.pgdata / "pg_replslot"
        for entry in slots.iterdir() if slots.is_dir() else ():
            shutil.rmtree(entry, ignore_errors=True)

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        self.runner.chown(path)

    def pid(self) -> int | None:
        """The postmaster's pid, when it runs."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 90.0) -> None:
        if self.running():
            return
        # A postmaster killed without cleaning up leaves its lock file behind.
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        result = self.runner.run(
            "pg_ctl",
            "start",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(int(timeout)),
            timeout=timeout + 10,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentError(
                f"PostgreSQL {self.name} did not start: {self._log_tail()}",
                hint=f"see {self.log}",
            )

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        self.runner.run(
            "pg_ctl",
            "stop",
            "-D",
            str(self.pgdata),
            "-m",
            mode,
            "-w",
            "-t",
            str(int(timeout)),
            timeout=timeout + 10,
            check=False,
        )
        if self.pid() is not None:
            terminate(pid, grace=5.0, first=signal.SIGQUIT)

    def promote(self, timeout: float = 60.0) -> None:
        self.runner.run("pg_ctl", "promote", "-D", str(self.pgdata), "-w", "-t", str(int(timeout)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.scalar("SELECT pg_is_in_recovery()"):
                return
            time.sleep(0.1)
        raise ComponentError(f"PostgreSQL {self.name} is still in recovery after promotion")

    def basebackup_from(self, source: NodeState) -> None:
        """A fresh copy of ``source`` (which must hold a slot named after this node)."""
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)
        self.prepare_dir()
        self.runner.run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(source.port),
            "-U",
            REPLICATION_USER,
            "-D",
            str(self.pgdata),
            "-X",
            "stream",
            "-c",
            "fast",
            "-S",
            self.name,
            "--no-password",
            timeout=300,
        )

    def rewind_from(self, source: NodeState) -> None:
        """Bring this stopped former primary back in line with ``source``'s timeline."""
        self.runner.run(
            "pg_rewind",
            "-D",
            str(self.pgdata),
            f"--source-server=host=127.0.0.1 port={source.port} user={SUPERUSER} dbname=postgres",
            timeout=300,
        )

    def checkpoint_lsn(self) -> str:
        """The latest checkpoint of a stopped server (its shutdown checkpoint)."""
        out = self.runner.run("pg_controldata", "-D", str(self.pgdata)).stdout
        for line in out.splitlines():
            if line.startswith("Latest checkpoint location:"):
                return line.split(":", 1)[1].strip()
        raise ComponentError(f"pg_controldata shows no checkpoint for {self.name}")

    def connect(self, dbname: str = "postgres", timeout: int = 3) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.node.dsn(dbname, timeout=timeout), autocommit=True)
        except psycopg.Error as exc:
            raise ComponentError(
                f"cannot connect to PostgreSQL {self.name}: {_one_line(exc)}"
            ) from None

    def scalar(self, sql: str, *params: object, dbname: str = "postgres") -> Any:
        with self.connect(dbname) as conn:
            row = conn.execute(sql, params or None).fetchone()
        return row[0] if row else None

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "no log"
        tail = [line for line in text.strip().splitlines() if line.strip()][-lines:]
        return " | ".join(tail) or "empty log"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def kill_strays(binaries: PgBinaries, pgdatas: list[Path]) -> None:
    """Kill PostgreSQL processes still working in a lab data directory (a killed postmaster's)."""
    server = os.path.realpath(binaries.tool("postgres"))
    roots = [str(p.resolve()) for p in pgdatas]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if exe == server and any(cwd == r or cwd.startswith(r + "/") for r in roots):
            terminate(int(entry.name), grace=2.0)
