"""The application and web tiers, and the gate in front of them, as background processes.

The gate is haprotect's HTTP gate (``python -m haprotect.lab.gate``) or, in
a lab made or brought up with ``--web-gate haproxy``, HAProxy
(:mod:`haprotect.lab.haproxy`) with a configuration written at its start.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import haprotect
from haprotect.errors import ComponentError
from haprotect.lab import haproxy, processes
from haprotect.lab.client import HttpFailure, get_json
from haprotect.lab.state import LabPaths, LabState

TIERS = ("app", "web", "gate")  #: module names under haprotect.lab, in start order
TIER_NAMES = {"app": "application", "web": "web", "gate": "HTTP gate"}


def tier_name(state: LabState, tier: str) -> str:
    return "HAProxy gate" if tier == "gate" and state.web_gate == "haproxy" else TIER_NAMES[tier]


def health_url(state: LabState, tier: str) -> str:
    """Where a tier answers ``GET /health`` (the HTTP gate on its admin port; HAProxy relays)."""
    if tier == "app":
        return state.app_url
    if tier == "gate":
        return state.gate_admin_url or state.web_url
    return state.web_direct_url


def marker(root: Path, tier: str, gate: str = "http") -> str:
    """What a tier's command line holds, so a recycled pid is never taken for it."""
    if tier == "gate" and gate == "haproxy":
        return f"-f {root / haproxy.CONFIG_NAME}"
    return f"haprotect.lab.{tier} --lab {root}"


def tier_pid(paths: LabPaths, tier: str, gate: str = "http") -> int | None:
    return processes.running_pid(paths.pid_file(tier), marker(paths.root, tier, gate))


def stop_tier(paths: LabPaths, tier: str, gate: str = "http") -> bool:
    """Stop a tier (the application flushes its buffer as it goes); True if it ran."""
    return processes.stop(paths.pid_file(tier), marker(paths.root, tier, gate), grace=20.0)


def _command(paths: LabPaths, state: LabState, tier: str) -> tuple[list[str], dict[str, str]]:
    """The tier's command line and environment (HAProxy's configuration written first)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if tier == "gate" and state.web_gate == "haproxy":
        binary = haproxy.find_haproxy()
        if binary is None or state.gate_port is None:
            raise ComponentError("HAProxy is not installed", hint=haproxy.HINT)
        config = haproxy.render_config(
            listen=state.gate_port, upstream=state.web_port, socket=paths.haproxy_socket
        )
        paths.haproxy_config.write_text(config)
        return [binary, "-db", "-f", str(paths.haproxy_config)], env
    src = str(Path(haprotect.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return [sys.executable, "-m", f"haprotect.lab.{tier}", "--lab", str(paths.root)], env


def start_tier(paths: LabPaths, state: LabState, tier: str, timeout: float = 20.0) -> bool:
    """Start a tier unless it runs; wait until it answers /health. True if started now."""
    if tier_pid(paths, tier, state.web_gate) is not None:
        return False
    argv, env = _command(paths, state, tier)
    log_file = paths.log_file(tier)
    pid = processes.spawn(
        argv, pid_file=paths.pid_file(tier), log_file=log_file, cwd=paths.root, env=env
    )
    url = health_url(state, tier)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and processes.alive(pid):
        try:
            get_json(f"{url}/health", timeout=2.0)
            return True
        except HttpFailure:
            time.sleep(0.1)
    processes.stop(paths.pid_file(tier))
    raise ComponentError(
        f"the {tier_name(state, tier)} tier did not start: {tail(log_file)}",
        hint=f"see {log_file}",
    )


def tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log, on one line."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "no log"
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "empty log"
