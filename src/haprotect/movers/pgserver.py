"""A restored PostgreSQL data directory: make it a standalone server, start it, ask it.

A physical backup taken from a standby carries that standby's
``standby.signal`` and its settings (port, socket directory, the
``primary_conninfo`` it followed). To check the restore, the directory is
made a standalone server (no signal files), owned by the server user with
mode 0700, and started with ``pg_ctl`` as that user on a free loopback port,
with command-line settings that override the copied ones (no unix socket,
no upstream). It replays the WAL the backup holds, then must answer a
query. It is left running when asked (a restore elsewhere, to be used), or
stopped again (a restore in place, where the cluster manager starts it).
"""

from __future__ import annotations

import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from haprotect.errors import ComponentError
from haprotect.movers.pgcheck import CHECK_APPLICATION, DEFAULT_USER
from haprotect.pgsession import one_line
from haprotect.pgtools import PgRunner, binaries_for, running_postmaster, server_user
from haprotect.ports import free_ports

SIGNALS = ("standby.signal", "recovery.signal", "postmaster.pid", "postmaster.opts")
START_TIMEOUT = 300
LOG_NAME = "haprotect-restore.log"


@dataclass(frozen=True, slots=True)
class ServerCheck:
    """What the restored server answered when it was started; ``log`` is its log file."""

    port: int
    version: str
    databases: int
    in_recovery: bool
    running: bool
    log: str


def prepare(pgdata: Path) -> str | None:
    """Make ``pgdata`` a standalone server's directory; the user it runs as."""
    for name in SIGNALS:
        (pgdata / name).unlink(missing_ok=True)
    (pgdata / "log").mkdir(exist_ok=True)
    run_as = server_user()
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        for dirpath, dirnames, filenames in os.walk(pgdata):
            os.chown(dirpath, entry.pw_uid, entry.pw_gid)
            for name in dirnames + filenames:
                os.chown(
                    os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False
                )
    os.chmod(pgdata, 0o700)
    return run_as


def start_and_check(pgdata: Path, *, keep_running: bool, user: str = DEFAULT_USER) -> ServerCheck:
    """Start the restored server on a free port, check it answers, stop it unless told not to."""
    run_as = prepare(pgdata)
    version = _major_version(pgdata)
    runner = PgRunner(binaries_for(version), run_as, Path("/"))
    if run_as is not None and not runner.can_write(pgdata):
        raise ComponentError(
            f"the {run_as!r} user cannot reach {pgdata}, so the restored server cannot start",
            hint="restore under a directory every parent of which it can enter, such as /tmp/...",
        )
    (port,) = free_ports(1)
    log = pgdata / "log" / LOG_NAME
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
        "-c primary_conninfo='' -c primary_slot_name='' -c archive_mode=off "
        "-c cluster_name=haprotect-restore"
    )
    result = runner.run(
        "pg_ctl",
        "start",
        "-D",
        str(pgdata),
        "-l",
        str(log),
        "-w",
        "-t",
        str(START_TIMEOUT),
        "-o",
        options,
        timeout=START_TIMEOUT + 30,
        check=False,
    )
    if result.returncode != 0:
        raise ComponentError(
            f"the restored PostgreSQL in {pgdata} did not start: {_tail(log)}", hint=f"see {log}"
        )
    try:
        check = _ask(port, user, log, keep_running)
    except ComponentError:
        stop(pgdata)
        raise
    if not keep_running:
        stop(pgdata)
    return check


def stop(pgdata: Path, timeout: int = 60) -> None:
    """Stop the server running in ``pgdata`` (fast shutdown), if one runs."""
    if running_postmaster(pgdata) is None:
        return
    runner = PgRunner(binaries_for(_major_version(pgdata)), server_user(), Path("/"))
    runner.run(
        "pg_ctl",
        "stop",
        "-D",
        str(pgdata),
        "-m",
        "fast",
        "-w",
        "-t",
        str(timeout),
        timeout=timeout + 10,
        check=False,
    )


def _ask(port: int, user: str, log: Path, running: bool) -> ServerCheck:
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=port,
                user=user,
                dbname="postgres",
                connect_timeout=5,
                application_name=CHECK_APPLICATION,
                autocommit=True,
            ) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), current_setting('server_version'), "
                    "(SELECT count(*) FROM pg_database WHERE NOT datistemplate)"
                ).fetchone()
            break
        except psycopg.Error as exc:
            if time.monotonic() > deadline:
                raise ComponentError(
                    f"the restored PostgreSQL on port {port} does not answer: {one_line(exc)}",
                    hint=f"see {log}",
                ) from None
            time.sleep(0.2)
    assert row is not None
    if row[0]:
        raise ComponentError(
            f"the restored PostgreSQL on port {port} is still in recovery", hint=f"see {log}"
        )
    return ServerCheck(port, str(row[1]), int(row[2]), bool(row[0]), running, str(log))


def _major_version(pgdata: Path) -> int:
    try:
        return int((pgdata / "PG_VERSION").read_text().strip().split(".")[0])
    except (OSError, ValueError) as exc:
        raise ComponentError(f"{pgdata} is not a PostgreSQL data directory ({exc})") from None


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "no log"
    tail = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(tail) or "empty log"
