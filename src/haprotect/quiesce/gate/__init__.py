"""The HTTP gate: a reverse proxy that holds requests while a backup takes its cut.

It runs as its own process in front of a web tier (``python -m
haprotect.quiesce.gate``); the ``http-gate`` quiescer
(:mod:`haprotect.quiesce.http_gate`) drives it through its admin API.

- http.py: HTTP/1.1 through h11 on asyncio streams, refusing ambiguous requests
- proxy.py: forwarding one request upstream and relaying the response
- core.py: the state (open, held, replaying), the queue, the lease
- server.py: the public and admin servers
- __main__.py: the command line
"""

from __future__ import annotations

from haprotect.quiesce.gate.core import Gate, GateLimits, GateState
from haprotect.quiesce.gate.proxy import Upstream
from haprotect.quiesce.gate.server import GateConfig, GateServer

__all__ = ["Gate", "GateConfig", "GateLimits", "GateServer", "GateState", "Upstream"]
