"""HAProxy as the lab's web gate (``lab up --web-gate haproxy``), instead of the HTTP gate.

Debian's ``haproxy`` binary runs in the foreground (``-db``) as a lab
process, with a configuration the lab writes to ``<lab>/haproxy.cfg``: one
``frontend web`` on the lab's gate port (loopback) in front of the web
tier, its runtime API as a unix socket in the lab's run directory
(``level admin``), ``option httpclose`` so that no idle client connection
outlives its request (a held frontend waits for none), and client timeouts
longer than any hold. The lab's CIB describes it as ``ocf:heartbeat:haproxy``
with that ``conffile``, which is how the policy chooses the ``haproxy``
quiescer for the front end.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CONFIG_NAME = "haproxy.cfg"
SOCKET_NAME = "haproxy.sock"
FRONTEND = "web"
#: Where Debian's package puts it (``/usr/sbin`` is not on every user's PATH).
DEBIAN_BINARY = "/usr/sbin/haproxy"
HINT = "install HAProxy (Debian: apt-get install haproxy; scripts/bootstrap does)"


def find_haproxy() -> str | None:
    """The ``haproxy`` binary: on PATH, else Debian's, else None."""
    found = shutil.which("haproxy")
    if found is not None:
        return found
    return DEBIAN_BINARY if Path(DEBIAN_BINARY).is_file() else None


def render_config(*, listen: int, upstream: int, socket: Path, maxconn: int = 500) -> str:
    """An HAProxy configuration: ``frontend web`` on ``listen`` to the web tier on ``upstream``."""
    return f"""# Written by haprotect's lab: HAProxy in front of the lab's web tier.
global
    maxconn 2000
    stats socket {socket} mode 600 level admin
    stats timeout 60s

defaults
    mode http
    option httpclose
    timeout connect 5s
    timeout client 300s
    timeout server 60s
    timeout queue 60s

frontend {FRONTEND}
    bind 127.0.0.1:{listen}
    maxconn {maxconn}
    default_backend web_tier

backend web_tier
    server web 127.0.0.1:{upstream}
"""
