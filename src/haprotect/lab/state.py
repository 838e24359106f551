"""The lab's state file, ``<lab>/lab.json``: where everything is and who is primary.

It is the one place every lab process reads: the application tier finds the
current primary here after a failover, the web tier finds the application,
the CLI and tests find ports and directories. It is written atomically
(temporary file, fsync, rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from haprotect.errors import InputError

FORMAT = "haprotect.lab/v1"
STATE_FILE = "lab.json"
NODE_NAMES = ("node1", "node2")
#: What stands in front of the web tier: haprotect's HTTP gate, or HAProxy (haprotect.lab.haproxy).
WEB_GATES = ("http", "haproxy")
DATABASE = "shop"
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"


@dataclass(frozen=True, slots=True)
class NodeState:
    """One PostgreSQL node of the lab as the state file records it."""

    name: str
    node_id: str  #: the Pacemaker node id in the lab's CIB
    port: int
    pgdata: str

    def dsn(self, dbname: str = DATABASE, user: str = SUPERUSER, timeout: int = 3) -> str:
        """A libpq connection string for this node over loopback TCP."""
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} connect_timeout={timeout}"
        )


@dataclass(frozen=True, slots=True)
class LabState:
    """The contents of the state file (see the module docstring)."""

    dir: str
    pg_version: int
    bindir: str
    run_as: str | None  #: the system user PostgreSQL runs as, None for the current user
    nodes: tuple[NodeState, ...]
    primary: str
    app_port: int
    web_port: int
    flush_interval: float = 2.0
    cib_epoch: int = 1
    format: str = FORMAT
    #: The HTTP gate in front of the web tier (haprotect.lab.gate): public and admin ports.
    #: None in a lab made before the gate existed, until its next ``up``.
    gate_port: int | None = None
    gate_admin_port: int | None = None
    #: The shared directory's own filesystem (haprotect.lab.volume): "xfs", or None for
    #: a plain directory.
    volume: str | None = None
    #: The public URL's gate (one of WEB_GATES); HAProxy listens on ``gate_port`` too.
    web_gate: str = "http"

    @property
    def root(self) -> Path:
        return Path(self.dir)

    def node(self, name: str) -> NodeState:
        for node in self.nodes:
            if node.name == name:
                return node
        raise InputError(f"{self.root / STATE_FILE}: no node {name!r} in the lab")

    @property
    def primary_node(self) -> NodeState:
        return self.node(self.primary)

    @property
    def standby_node(self) -> NodeState:
        return next(n for n in self.nodes if n.name != self.primary)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def web_url(self) -> str:
        """The lab's public URL: through the HTTP gate when the lab has one."""
        return f"http://127.0.0.1:{self.gate_port or self.web_port}"

    @property
    def web_direct_url(self) -> str:
        """The web tier itself, behind the gate."""
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def gate_admin_url(self) -> str | None:
        """The HTTP gate's admin API (loopback): POST /hold, /resume; GET /status.

        None when the lab's gate is HAProxy, whose runtime API is a unix socket.
        """
        if self.web_gate != "http" or not self.gate_admin_port:
            return None
        return f"http://127.0.0.1:{self.gate_admin_port}"

    def with_primary(self, name: str) -> LabState:
        self.node(name)
        return replace(self, primary=name)

    def to_json(self) -> dict[str, Any]:
        """The file's content: the fields, plus derived paths and URLs for other readers."""
        data = asdict(self)
        data["nodes"] = {
            n.name: {k: v for k, v in asdict(n).items() if k != "name"} for n in self.nodes
        }
        data["standby"] = self.standby_node.name
        data["app_url"] = self.app_url
        data["web_url"] = self.web_url
        data["web_direct_url"] = self.web_direct_url
        data["gate_admin_url"] = self.gate_admin_url
        data["database"] = DATABASE
        paths = lab_paths(self.root, self.volume)
        data["paths"] = {k: str(v) for k, v in asdict(paths).items()}
        return data


@dataclass(frozen=True, slots=True)
class LabPaths:
    """Every file and directory of a lab, derived from its root."""

    root: Path
    state: Path
    cib: Path
    journal: Path
    run: Path  #: pid files and PostgreSQL's unix sockets
    logs: Path
    shared: Path  #: stands for the cluster's shared (HA) filesystem
    uploads: Path
    cuts: Path | None = None  #: where a cut of ``shared`` goes, on its filesystem (a volume)

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def pgdata(self, name: str) -> Path:
        return self.root / name / "pgdata"

    def pg_log(self, name: str) -> Path:
        return self.root / name / "postgresql.log"

    def pid_file(self, process: str) -> Path:
        return self.run / f"{process}.pid"

    def log_file(self, process: str) -> Path:
        return self.logs / f"{process}.log"

    @property
    def haproxy_config(self) -> Path:
        return self.root / "haproxy.cfg"

    @property
    def haproxy_socket(self) -> Path:
        """HAProxy's runtime API (``level admin``), when it is the lab's gate."""
        return self.run / "haproxy.sock"


def lab_paths(root: Path, volume: str | None = None) -> LabPaths:
    """The lab's paths; with a ``volume`` the shared directory lies on it."""
    base = root / "volume" if volume else root
    shared = base / "shared"
    return LabPaths(
        root=root,
        state=root / STATE_FILE,
        cib=root / "cib.xml",
        journal=root / "journal.jsonl",
        run=root / "run",
        logs=root / "logs",
        shared=shared,
        uploads=shared / "uploads",
        cuts=base / "cuts" if volume else None,
    )


def load_state(root: Path) -> LabState | None:
    """The lab's state, or None when no lab was ever brought up there."""
    path = root / STATE_FILE
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        nodes = tuple(
            NodeState(name, str(n["node_id"]), int(n["port"]), str(n["pgdata"]))
            for name, n in data["nodes"].items()
        )
        return LabState(
            dir=str(data["dir"]),
            pg_version=int(data["pg_version"]),
            bindir=str(data["bindir"]),
            run_as=data.get("run_as"),
            nodes=nodes,
            primary=str(data["primary"]),
            app_port=int(data["app_port"]),
            web_port=int(data["web_port"]),
            flush_interval=float(data.get("flush_interval", 2.0)),
            cib_epoch=int(data.get("cib_epoch", 1)),
            gate_port=_port_or_none(data.get("gate_port")),
            gate_admin_port=_port_or_none(data.get("gate_admin_port")),
            volume=data.get("volume"),
            web_gate=_web_gate(data.get("web_gate", "http")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{path}: not a lab state file ({exc})",
            hint="remove the lab directory and run 'haprotect lab up' again",
        ) from None


def _web_gate(value: Any) -> str:
    if value not in WEB_GATES:
        raise ValueError(f"web_gate is {value!r}, expected one of {', '.join(WEB_GATES)}")
    return str(value)


def _port_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def save_state(state: LabState) -> None:
    write_atomic(state.root / STATE_FILE, json.dumps(state.to_json(), indent=2).encode() + b"\n")


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
