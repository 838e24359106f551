"""Making a lab: its directories, its state and the runner of its PostgreSQL tools.

The parts of :meth:`haprotect.lab.Lab.up` that create rather than start:
which PostgreSQL binaries a lab uses (those it was made with), the
directories and their owners (PostgreSQL runs as ``postgres`` when the lab
runs as root), the shared volume (:mod:`haprotect.lab.volume`), and a new
lab's state with its free ports.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path

from haprotect.errors import ComponentError, UsageError
from haprotect.lab import volume as lab_volume
from haprotect.lab.state import NODE_NAMES, LabPaths, LabState, NodeState
from haprotect.pgtools import PgBinaries, PgRunner, find_postgres, server_user
from haprotect.ports import free_ports

MIN_VERSION = 12  #: standby.signal and primary_conninfo in postgresql.conf
_SOCKET_PATH_MAX = 107

Emit = Callable[[str, str], None]


def prepare(
    root: Path, paths: LabPaths, volume: str | None, binaries: PgBinaries, emit: Emit
) -> PgRunner:
    """Make the lab's directories (on its volume, mounted), owned so PostgreSQL can use them."""
    run_as = server_user()
    socket_path = len(str(paths.run)) + len("/.s.PGSQL.65535")
    if socket_path > _SOCKET_PATH_MAX:
        raise UsageError(
            f"lab directory {root} is too long for PostgreSQL's unix sockets",
            hint="choose a shorter path, such as /tmp/haprotect-lab",
        )
    root.mkdir(parents=True, exist_ok=True)
    if volume is not None and lab_volume.ensure(root, volume):
        emit("volume", f"mounted the lab's {volume} volume on {paths.shared.parent}")
    for path in (paths.run, paths.logs, paths.uploads):
        path.mkdir(parents=True, exist_ok=True)
    if paths.cuts is not None:
        paths.cuts.mkdir(mode=0o700, exist_ok=True)
    runner = PgRunner(binaries, run_as, root)
    if run_as is not None:
        root.chmod(root.stat().st_mode | 0o711)
        paths.run.chmod(0o755)
        runner.chown(paths.run)
        if not runner.can_write(paths.run):
            raise ComponentError(
                f"the {run_as!r} user cannot reach {root}",
                hint="put the lab where every parent directory is searchable, "
                "such as /tmp/haprotect-lab",
            )
    return runner


def new_state(
    root: Path,
    paths: LabPaths,
    binaries: PgBinaries,
    run_as: str | None,
    *,
    flush_interval: float,
    volume: str | None,
) -> LabState:
    """A new lab's state: two nodes, node1 primary, every port free now."""
    ports = free_ports(len(NODE_NAMES) + 4)
    nodes = tuple(
        NodeState(name, str(i + 1), port, str(paths.pgdata(name)))
        for i, (name, port) in enumerate(zip(NODE_NAMES, ports, strict=False))
    )
    return LabState(
        dir=str(root),
        pg_version=binaries.version,
        bindir=str(binaries.bindir),
        run_as=run_as,
        nodes=nodes,
        primary=NODE_NAMES[0],
        app_port=ports[-4],
        web_port=ports[-3],
        gate_port=ports[-2],
        gate_admin_port=ports[-1],
        flush_interval=flush_interval,
        volume=volume,
    )


def lab_binaries(state: LabState | None) -> PgBinaries:
    """The binaries a lab was made with (its data needs that version), or the newest."""
    if state is None:
        found = find_postgres()
        if found.version < MIN_VERSION:
            raise ComponentError(
                f"PostgreSQL {found.version} is too old for the lab (needs {MIN_VERSION} or later)"
            )
        return found
    bindir = Path(state.bindir)
    if not (bindir / "pg_ctl").exists():
        raise ComponentError(
            f"the lab was made with PostgreSQL {state.pg_version} in {bindir}, which is gone",
            hint="reinstall it, or remove the lab with 'haprotect lab down --purge'",
        )
    return PgBinaries(state.pg_version, bindir)


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name
