"""Free TCP ports on the loopback interface, for the servers haprotect starts itself."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now.

    All are held open together so none is handed out twice; another process
    could still take one before its server binds it, which that server then
    reports.
    """
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
