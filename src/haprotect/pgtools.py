"""PostgreSQL's programs, found on this machine and run as the right user.

Shared by the lab (which runs a PostgreSQL pair) and the PostgreSQL mover
(``pg_basebackup``, and ``pg_ctl`` to check a restored server). They are
Debian's binaries (``/usr/lib/postgresql/<version>/bin``, the highest version
installed), or the directory ``$HAPROTECT_PG_BINDIR`` names, or ``initdb`` on
``PATH``. PostgreSQL refuses to run as root, so when haprotect runs as root
every server program runs as the ``postgres`` system user; otherwise as the
current user.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from haprotect.errors import ComponentError

BINDIR_ENV = "HAPROTECT_PG_BINDIR"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
REQUIRED = ("initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "pg_controldata", "postgres")
SYSTEM_USER = "postgres"
_HINT = "run scripts/bootstrap (it installs Debian's postgresql package), or set " + BINDIR_ENV


@dataclass(frozen=True, slots=True)
class PgBinaries:
    """The PostgreSQL server binaries found: their major version and directory."""

    version: int
    bindir: Path

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def find_postgres() -> PgBinaries:
    """The PostgreSQL server binaries to use, or a ComponentError saying how to get them."""
    override = os.environ.get(BINDIR_ENV)
    if override:
        return _checked(Path(override))
    versions = sorted((int(p.name), p / "bin") for p in _children(DEBIAN_ROOT) if p.name.isdigit())
    for _, bindir in reversed(versions):
        if (bindir / "initdb").exists():
            return _checked(bindir)
    initdb = shutil.which("initdb")
    if initdb:
        return _checked(Path(initdb).resolve().parent)
    raise ComponentError(
        "the PostgreSQL server binaries (initdb, pg_ctl) are not installed", hint=_HINT
    )


def binaries_for(version: int) -> PgBinaries:
    """The binaries of one major version (a data directory needs its own), else the newest.

    Debian keeps each version in ``/usr/lib/postgresql/<version>/bin``; when
    that version is not installed, :func:`find_postgres` decides, and the
    caller compares versions.
    """
    override = os.environ.get(BINDIR_ENV)
    bindir = DEBIAN_ROOT / str(version) / "bin"
    if not override and (bindir / "pg_ctl").exists():
        return _checked(bindir)
    return find_postgres()


def _children(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _checked(bindir: Path) -> PgBinaries:
    missing = [name for name in REQUIRED if not os.access(bindir / name, os.X_OK)]
    if missing:
        raise ComponentError(f"PostgreSQL in {bindir} lacks {', '.join(missing)}", hint=_HINT)
    try:
        out = subprocess.run(
            [str(bindir / "initdb"), "--version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComponentError(f"cannot run {bindir / 'initdb'}: {exc}", hint=_HINT) from None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if match is None:
        raise ComponentError(f"cannot tell the version of {bindir / 'initdb'}: {out.strip()!r}")
    return PgBinaries(int(match.group(1)), bindir)


def server_user() -> str | None:
    """The system user PostgreSQL must run as: ``postgres`` under root, else None (us)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise ComponentError(
            f"running as root, and there is no {SYSTEM_USER!r} system user to run PostgreSQL as",
            hint=_HINT,
        ) from None
    return SYSTEM_USER


def running_postmaster(pgdata: Path) -> int | None:
    """The pid of a live postmaster working in ``pgdata``, if any."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def server_running(pgdata: Path) -> str | None:
    """Why nothing may replace ``pgdata`` now: a server runs in it (None: none does)."""
    pid = running_postmaster(pgdata)
    if pid is None:
        return None
    return (
        f"a PostgreSQL server (pid {pid}) runs in {pgdata}: stop it first (its cluster "
        f"resource, or: {stop_command(pgdata)})"
    )


def stop_command(pgdata: Path) -> str:
    """A shell command that stops the server running in ``pgdata``, typed by whoever runs us.

    ``pg_ctl`` refuses to run as root, and only the data directory's owner
    may stop its server: the command runs as that owner (``runuser`` as
    root, ``sudo`` otherwise) unless that is us.
    """
    try:
        version = int((pgdata / "PG_VERSION").read_text().strip().split(".")[0])
        pg_ctl = binaries_for(version).tool("pg_ctl")
    except (OSError, ValueError, ComponentError):
        pg_ctl = "pg_ctl"
    command = f"{shlex.quote(pg_ctl)} -D {shlex.quote(str(pgdata))} stop"
    try:
        owner = os.stat(pgdata).st_uid
    except OSError:
        return command
    if owner == os.geteuid():
        return command
    try:
        name = pwd.getpwuid(owner).pw_name
    except KeyError:
        name = f"#{owner}"
    if os.geteuid() == 0 and not name.startswith("#"):
        return f"runuser -u {shlex.quote(name)} -- {command}"
    return f"sudo -u {shlex.quote(name)} -- {command}"


class PgRunner:
    """Runs PostgreSQL's programs as the server user, in the lab directory."""

    def __init__(self, binaries: PgBinaries, run_as: str | None, cwd: Path) -> None:
        self.binaries = binaries
        self.run_as = run_as
        self.cwd = cwd

    def run(
        self, tool: str, *args: str, timeout: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.binaries.tool(tool), *args]
        return self.run_argv(argv, timeout=timeout, check=check, what=tool)

    def run_argv(
        self, argv: list[str], *, timeout: float = 120.0, check: bool = True, what: str = ""
    ) -> subprocess.CompletedProcess[str]:
        what = what or Path(argv[0]).name
        uid = gid = None
        groups: list[int] | None = None
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            uid, gid, groups = entry.pw_uid, entry.pw_gid, []
        try:
            result = subprocess.run(
                argv,
                check=False,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.cwd,
                env=self.env(),
                start_new_session=True,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        except subprocess.TimeoutExpired:
            raise ComponentError(f"{what} did not finish in {timeout:.0f}s") from None
        except OSError as exc:
            raise ComponentError(f"cannot run {what}: {exc}", hint=_HINT) from None
        if check and result.returncode != 0:
            detail = _last_line(result.stderr) or _last_line(result.stdout) or "no output"
            raise ComponentError(f"{what} failed with exit code {result.returncode}: {detail}")
        return result

    def can_write(self, path: Path) -> bool:
        """Whether the server user can reach and write ``path`` (every parent traversable)."""
        result = self.run_argv(["test", "-w", str(path)], check=False, what="test")
        return result.returncode == 0

    def chown(self, path: Path) -> None:
        """Hand ``path`` to the server user (a no-op when that is us)."""
        if self.run_as is None:
            return
        entry = pwd.getpwnam(self.run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "TZ")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env["LC_ALL"] = "C"
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            env.update(HOME=entry.pw_dir, USER=self.run_as, LOGNAME=self.run_as)
        else:
            env["HOME"] = os.environ.get("HOME", str(self.cwd))
        return env


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
