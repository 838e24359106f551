"""The lab's HTTP gate: the lab's public URL, in front of the web tier.

An :mod:`haprotect.quiesce.gate` process listening on the lab's
``gate_port`` and forwarding to the web tier's port, with its admin API on
``gate_admin_port`` (loopback, no token: the lab trusts local users). The
``http-gate`` quiescer holds it with ``admin_url`` = ``lab.gate_admin_url``.

Run as ``python -m haprotect.lab.gate --lab DIR``; its ports are in the state.
"""

from __future__ import annotations

import sys

from haprotect.lab.serving import lab_dir_argument
from haprotect.lab.state import load_state
from haprotect.quiesce.gate.core import GateLimits
from haprotect.quiesce.gate.proxy import Upstream
from haprotect.quiesce.gate.server import GateConfig, serve

#: Lab-sized limits: a short wait bound, so tests of the 503 path stay quick.
LIMITS = GateLimits(max_queue=500, max_wait=20.0, retry_after=1)


def main() -> int:
    lab_dir = lab_dir_argument("The haprotect lab's HTTP gate (in front of the web tier).")
    state = load_state(lab_dir)
    if state is None or state.gate_port is None or state.gate_admin_port is None:
        sys.stderr.write(f"{lab_dir}: no lab state file with gate ports\n")
        return 1
    config = GateConfig(
        listen=("127.0.0.1", state.gate_port),
        admin=("127.0.0.1", state.gate_admin_port),
        upstream=Upstream("127.0.0.1", state.web_port),
        limits=LIMITS,
    )
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
