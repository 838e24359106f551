"""The lab: bring it up, ask how it is, fail it over, bring it down.

:class:`Lab` is the API the CLI, the demo and the tests use. Everything it
starts runs in the background and is found again through the state file and
pid files, so ``up`` is idempotent (it starts only what is not running) and
any later process (another command, a test) can drive the same lab.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from haprotect.errors import ComponentError, InputError, UsageError
from haprotect.lab import volume as lab_volume
from haprotect.lab.cib import CibNode, CibSpec, render_cib, tools_feature_set
from haprotect.lab.client import HttpFailure, post_json
from haprotect.lab.haproxy import DEBIAN_BINARY, find_haproxy
from haprotect.lab.inventory import INVENTORY_FILE, render_inventory
from haprotect.lab.making import current_user, lab_binaries, new_state, prepare
from haprotect.lab.pgnode import PgNode, kill_strays
from haprotect.lab.probe import probe_node, probe_tier
from haprotect.lab.replication import Replication
from haprotect.lab.report import LabEvent, LabStatus
from haprotect.lab.state import (
    DATABASE,
    WEB_GATES,
    LabPaths,
    LabState,
    lab_paths,
    load_state,
    save_state,
    write_atomic,
)
from haprotect.lab.tiers import TIERS, health_url, start_tier, stop_tier, tier_name, tier_pid
from haprotect.pgtools import PgRunner
from haprotect.ports import free_ports

if TYPE_CHECKING:
    from haprotect.lab.load import LoadReport

log = logging.getLogger(__name__)


class Lab:
    """A local two-node PostgreSQL cluster with an application and a web tier.

    ``on_event`` receives a :class:`LabEvent` for every step; nothing prints.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        on_event: Callable[[LabEvent], None] | None = None,
        flush_interval: float = 2.0,
        volume: str | None = None,
        web_gate: str | None = None,
    ) -> None:
        """``volume``: put a new lab's shared directory on a filesystem of its own
        (:mod:`haprotect.lab.volume`); an existing lab keeps what it was made with.
        ``web_gate``: what ``up`` puts in front of the web tier, ``http`` (haprotect's
        gate) or ``haproxy``; None keeps an existing lab's (a new one gets ``http``)."""
        if web_gate is not None and web_gate not in WEB_GATES:
            raise UsageError(
                f"unknown web gate {web_gate!r}", hint=f"choose one of {', '.join(WEB_GATES)}"
            )
        self._web_gate = web_gate
        self.root = Path(directory).absolute()
        self.on_event = on_event
        self.flush_interval = flush_interval
        if volume is not None:
            lab_volume.check_kind(volume)
        self.volume = volume
        try:
            existing = load_state(self.root)
        except InputError:
            existing = None  # said again, with its reason, by whatever needs the state
        if existing is not None:
            self.volume = existing.volume
        resolved = None if self.volume == lab_volume.AUTO else self.volume  # decided at up
        self.paths: LabPaths = lab_paths(self.root, resolved)

    # -- where things are ---------------------------------------------------

    @property
    def state(self) -> LabState:
        state = load_state(self.root)
        if state is None:
            raise UsageError(f"no lab in {self.root}", hint=f"haprotect lab up --dir {self.root}")
        return state

    @property
    def exists(self) -> bool:
        return load_state(self.root) is not None

    @property
    def primary(self) -> str:
        return self.state.primary

    @property
    def standby(self) -> str:
        return self.state.standby_node.name

    def dsn(self, node: str, dbname: str = DATABASE) -> str:
        return self.state.node(node).dsn(dbname)

    @property
    def primary_dsn(self) -> str:
        return self.state.primary_node.dsn()

    @property
    def standby_dsn(self) -> str:
        return self.state.standby_node.dsn()

    @property
    def ports(self) -> dict[str, int]:
        state = self.state
        return {
            **{n.name: n.port for n in state.nodes},
            "app": state.app_port,
            "web": state.web_port,
            **({"gate": state.gate_port} if state.gate_port else {}),
            **(
                {"gate-admin": state.gate_admin_port}
                if state.gate_admin_port and state.gate_admin_url
                else {}
            ),
        }

    @property
    def data_dirs(self) -> dict[str, Path]:
        return {n.name: Path(n.pgdata) for n in self.state.nodes}

    @property
    def app_url(self) -> str:
        return self.state.app_url

    @property
    def web_url(self) -> str:
        """The public URL: through the HTTP gate in front of the web tier."""
        return self.state.web_url

    @property
    def web_direct_url(self) -> str:
        """The web tier itself, bypassing the gate."""
        return self.state.web_direct_url

    @property
    def gate_admin_url(self) -> str:
        """The HTTP gate's admin API (POST /hold, /resume; GET /status)."""
        state = self.state
        url = state.gate_admin_url
        if url is None and state.web_gate == "haproxy":
            raise UsageError(
                f"the lab in {self.root} has HAProxy as its gate, which has no admin URL",
                hint=f"its runtime API is {self.haproxy_socket}",
            )
        if url is None:
            raise UsageError(f"the lab in {self.root} has no gate yet", hint="haprotect lab up")
        return url

    @property
    def web_gate(self) -> str:
        """What stands in front of the web tier: ``http`` (the HTTP gate) or ``haproxy``."""
        return self.state.web_gate

    @property
    def haproxy_socket(self) -> Path:
        """HAProxy's runtime API (a unix socket), when it is the lab's gate."""
        return self.paths.haproxy_socket

    @property
    def shared_dir(self) -> Path:
        return self.paths.shared

    @property
    def uploads_dir(self) -> Path:
        return self.paths.uploads

    @property
    def cib_path(self) -> Path:
        return self.paths.cib

    @property
    def inventory_path(self) -> Path:
        """How haprotect reaches the lab's nodes (``backup --inventory``)."""
        return self.root / INVENTORY_FILE

    @property
    def journal_path(self) -> Path:
        return self.paths.journal

    # -- lifecycle ----------------------------------------------------------

    def up(self) -> LabStatus:
        """Create what is missing, start what is not running; leave the rest alone."""
        self.root.mkdir(parents=True, exist_ok=True)
        if load_state(self.root) is None and any(p.name != ".lock" for p in self.root.iterdir()):
            raise UsageError(
                f"{self.root} is not empty and holds no lab",
                hint="choose a new or empty directory for the lab",
            )
        with self._locked():
            self._up()
        return self.status()

    def _up(self) -> None:
        state = load_state(self.root)
        binaries = lab_binaries(state)
        if state is None and self.volume == lab_volume.AUTO:
            self.root.mkdir(parents=True, exist_ok=True)
            self.volume, said = lab_volume.resolve_auto(self.root)
            self.paths = lab_paths(self.root, self.volume)
            self._emit("volume", said)
        runner = prepare(self.root, self.paths, self.volume, binaries, self._emit)
        if state is None:
            state = new_state(
                self.root,
                self.paths,
                binaries,
                runner.run_as,
                flush_interval=self.flush_interval,
                volume=self.volume,
            )
            self._emit("create", f"new lab in {self.root} (PostgreSQL {binaries.version})")
        if state.gate_port is None or state.gate_admin_port is None:
            gate, admin = free_ports(2)  # a lab made before the gate: give it one
            state = replace(state, gate_port=gate, gate_admin_port=admin)
        if self._web_gate is not None and self._web_gate != state.web_gate:
            if stop_tier(self.paths, "gate", state.web_gate):
                self._emit("stop", f"stopped the {tier_name(state, 'gate')} tier")
            state = replace(state, web_gate=self._web_gate)
        save_state(state)
        primary = PgNode(runner, state.primary_node, self.paths)
        standby = PgNode(runner, state.standby_node, self.paths)
        pair = self._replication()
        if not primary.initialized():
            self._emit("initdb", f"initialising {primary.pgdata}", primary.name)
            primary.initdb()
        pair.start_node(primary, None)
        pair.setup_primary(primary, standby.name)
        if not standby.initialized():
            self._emit("basebackup", f"cloning {primary.name} into {standby.pgdata}", standby.name)
            standby.basebackup_from(primary.node)
            pair.start_node(standby, primary.node)
            pair.wait_streaming(primary, standby.name)
        elif not standby.running():
            # Rewound (usually a no-op) or cloned afresh: whatever stopped it, it follows.
            pair.rejoin(standby, primary)
        else:
            pair.wait_streaming(primary, standby.name)
        for tier in TIERS:
            if start_tier(self.paths, state, tier):
                self._emit("start", f"started the {tier_name(state, tier)} tier")
        self.write_cib(running=True)
        self.write_inventory()
        self._emit("up", f"lab up: primary {primary.name}, standby {standby.name}")

    def down(self, *, purge: bool = False) -> None:
        """Stop every lab process (terminate, then kill); ``purge`` also deletes the lab."""
        if load_state(self.root) is None:
            self._emit("down", f"no lab in {self.root}: nothing to stop")
            return
        with self._locked():
            self._down(purge)

    def _down(self, purge: bool) -> None:
        state = self.state
        for tier in reversed(TIERS):
            if stop_tier(self.paths, tier, state.web_gate):
                self._emit("stop", f"stopped the {tier_name(state, tier)} tier")
        runner = PgRunner(lab_binaries(state), state.run_as, self.root)
        for node_state in (state.standby_node, state.primary_node):
            node = PgNode(runner, node_state, self.paths)
            if node.running():
                self._emit("stop", f"stopping PostgreSQL {node.name}", node.name)
                node.stop()
        kill_strays(runner.binaries, [Path(n.pgdata) for n in state.nodes])
        if purge and lab_volume.release(self.root):
            self._emit("volume", f"unmounted the lab's volume from {self.paths.shared.parent}")
        if purge:
            shutil.rmtree(self.root)
            self._emit("down", f"lab stopped and {self.root} removed")
            return
        self.write_cib(running=False)
        self._emit("down", "lab stopped; its data stays for the next 'lab up'")

    def status(self) -> LabStatus:
        state = self.state
        runner = PgRunner(lab_binaries(state), state.run_as, self.root)
        nodes = tuple(
            probe_node(
                PgNode(runner, n, self.paths), "primary" if n.name == state.primary else "standby"
            )
            for n in state.nodes
        )
        tiers = tuple(
            probe_tier(
                tier_name(state, t),
                health_url(state, t),
                tier_pid(self.paths, t, state.web_gate),
            )
            for t in TIERS
        )
        return LabStatus(
            dir=str(self.root),
            primary=state.primary,
            standby=state.standby_node.name,
            nodes=nodes,
            tiers=tiers,
            cib=str(self.paths.cib),
        )

    def failover(self) -> LabStatus:
        """Promote the standby, make the old primary its standby, rewrite state and CIB."""
        with self._locked():
            self._failover()
        return self.status()

    def _failover(self) -> None:
        state = self.state
        runner = PgRunner(lab_binaries(state), state.run_as, self.root)
        old = PgNode(runner, state.primary_node, self.paths)
        new = PgNode(runner, state.standby_node, self.paths)
        self._replication().switch_over(state, old, new)
        self.write_cib(running=True)
        self.write_inventory()
        self._emit("failover", f"{new.name} is the primary, {old.name} its standby")

    def flush(self) -> int:
        """Have the application write its buffer to the database now; rows written."""
        try:
            answer = post_json(f"{self.state.app_url}/admin/flush", {}, timeout=30.0)
        except HttpFailure as exc:
            raise ComponentError(
                f"the application tier could not flush: {exc}",
                hint=f"is the lab up? haprotect lab status --dir {self.root}",
            ) from None
        return int(answer["flushed"])

    def load(self, seconds: float = 10.0, rate: float = 10.0, upload_every: int = 5) -> LoadReport:
        """Send orders and uploads through the web tier for ``seconds``; what was acknowledged."""
        from haprotect.lab.load import LabLoad

        with LabLoad(
            self.web_url, self.journal_path, rate=rate, upload_every=upload_every
        ) as running:
            running.wait(seconds)
        return running.report()

    # -- pieces -------------------------------------------------------------

    def write_cib(self, *, running: bool) -> None:
        """Describe the lab as a Pacemaker CIB: its resources and who runs what now."""
        state = self.state
        epoch = state.cib_epoch + 1 if self.paths.cib.exists() else state.cib_epoch
        spec = CibSpec(
            nodes=tuple(CibNode(n.name, n.node_id, n.pgdata, n.port) for n in state.nodes),
            primary=state.primary,
            bindir=state.bindir,
            socket_dir=str(self.paths.run),
            system_user=state.run_as or current_user(),
            shared_dir=str(self.paths.shared),
            python=sys.executable,
            lab_dir=str(self.root),
            run_dir=str(self.paths.run),
            log_dir=str(self.paths.logs),
            epoch=epoch,
            running=running,
            last_change=int(time.time()),
            feature_set=tools_feature_set(),
            haproxy=self._haproxy(state),
        )
        write_atomic(self.paths.cib, render_cib(spec))
        save_state(replace(state, cib_epoch=epoch))

    def _haproxy(self, state: LabState) -> tuple[str, str] | None:
        if state.web_gate != "haproxy":
            return None
        return (find_haproxy() or DEBIAN_BINARY, str(self.paths.haproxy_config))

    def write_inventory(self) -> None:
        """Write ``inventory.yaml``: each node's host and PostgreSQL location."""
        write_atomic(self.inventory_path, render_inventory(self.state))

    def _emit(self, step: str, message: str, node: str | None = None) -> None:
        log.info("%s", message)
        if self.on_event is not None:
            self.on_event(LabEvent(step, message, node))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One lifecycle command at a time per lab (another waits for this one)."""
        with (self.root / ".lock").open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _replication(self) -> Replication:
        return Replication(self._emit)
