"""The gate process: a public proxy port and a loopback admin port.

Public port: every request is read whole, admitted by the :class:`Gate`
(at once, or after waiting in the queue while held), forwarded to the
upstream and its response relayed. A request the gate will not hold gets
``503`` with ``Retry-After`` and a JSON body saying why.

Admin port (loopback unless a token is set; with ``token``, every call but
``GET /health`` needs ``Authorization: Bearer TOKEN``)::

    POST /hold    {"id", "holder", "lease", "drain_timeout"}  200 when drained, with the queue
                  409 held by another id; 504 not drained in time (the hold is released)
    POST /renew   {"id", "lease"}                             200, or 409 when not held by id
    POST /resume  {"id"?, "wait"?}                            200 {"resumed": true|false, ...}
    GET  /status                                              the state, queue, hold, counters
    GET  /health                                              {"status": "ok", "state": ...}

SIGTERM or SIGINT: stop listening, release any hold (queued requests are
replayed), wait for in-flight requests, exit.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import signal
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from haprotect.quiesce.gate.core import Conflict, DrainTimeout, Gate, GateLimits, Rejected
from haprotect.quiesce.gate.http import ClientConnection, HttpError, Request
from haprotect.quiesce.gate.proxy import Upstream, forward

log = logging.getLogger(__name__)

MAX_ADMIN_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class GateConfig:
    """What a gate process listens on, forwards to and allows; :meth:`check` refuses unsafe ones."""

    listen: tuple[str, int]
    admin: tuple[str, int]
    upstream: Upstream
    limits: GateLimits = field(default_factory=GateLimits)
    max_body: int = 64 * 1024 * 1024
    token: str | None = None
    stop_grace: float = 10.0
    client_timeout: float = 60.0  #: to receive a whole request (and between keep-alive requests)

    def check(self) -> None:
        if self.token is None and not _loopback(self.admin[0]):
            raise ValueError(f"the admin API on {self.admin[0]} needs a token (not loopback)")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class GateServer:
    """The gate process: serves the public and admin ports around one :class:`Gate`."""

    def __init__(self, config: GateConfig) -> None:
        config.check()
        self.config = config
        self.gate = Gate(config.limits)
        self._servers: list[asyncio.Server] = []
        self._stopping = asyncio.Event()
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def ports(self) -> tuple[int, int]:
        """The (public, admin) ports actually bound (useful with port 0)."""
        public, admin = (s.sockets[0].getsockname()[1] for s in self._servers)
        return int(public), int(admin)

    async def start(self) -> None:
        public = await asyncio.start_server(self._serve_client, *self.config.listen)
        admin = await asyncio.start_server(self._serve_admin, *self.config.admin)
        self._servers = [public, admin]
        log.info(
            "gate on %s:%d to %s, admin on %s:%d",
            *self.config.listen,
            self.config.upstream.address,
            *self.config.admin,
        )

    async def run(self) -> None:
        """Serve until SIGTERM or SIGINT (or :meth:`stop`), then stop gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        await self._stopping.wait()
        await self.close()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        if self.gate.hold is not None:
            await self.gate.resume(None)
        with suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), self.config.stop_grace)
        for writer in list(self._clients):  # idle keep-alive connections
            writer.close()
        await asyncio.sleep(0.05)
        log.info("gate stopped")

    async def _drained(self) -> None:
        while self.gate.in_flight or self.gate.queue:
            await asyncio.sleep(0.05)

    # -- public side ---------------------------------------------------------------

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        self._clients.add(writer)
        conn = ClientConnection(reader, writer)
        try:
            while await self._one_request(conn, client):
                pass
        except (ConnectionError, OSError) as exc:
            log.debug("client %s: %s", client, exc)
        finally:
            self._clients.discard(writer)
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()

    async def _one_request(self, conn: ClientConnection, client: str) -> bool:
        """Serve one request; True if the connection carries another."""
        try:
            request = await asyncio.wait_for(
                conn.read_request(self.config.max_body), self.config.client_timeout
            )
        except HttpError as exc:
            log.info("client %s: refused (%d): %s", client, exc.status, exc.message)
            await conn.refuse(exc)
            return False
        except TimeoutError:
            return False
        if request is None:
            return False
        close = self._stopping.is_set()
        try:
            ticket = await self.gate.admit()
        except Rejected as exc:
            retry = (b"Retry-After", str(self.config.limits.retry_after).encode())
            body = {"error": exc.message, "reason": exc.reason}
            await conn.answer(503, body, close=close, extra=[retry])
            return conn.next_cycle()
        try:
            await forward(request, self.config.upstream, conn, client=client, close=close)
        finally:
            self.gate.finish(ticket)
        return conn.next_cycle()

    # -- admin side ----------------------------------------------------------------

    async def _serve_admin(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One request per connection, answered and closed."""
        conn = ClientConnection(reader, writer)
        try:
            try:
                request = await asyncio.wait_for(
                    conn.read_request(MAX_ADMIN_BODY), self.config.client_timeout
                )
            except HttpError as exc:
                await conn.refuse(exc)
                return
            if request is None:
                return
            status, body = await self._admin(request)
            await conn.answer(status, body, close=True)
        except (ConnectionError, OSError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _admin(self, request: Request) -> tuple[int, dict[str, Any]]:
        method, path = request.method, request.target.split("?", 1)[0]
        if path == "/health" and method == "GET":
            return 200, {"status": "ok", "tier": "gate", "state": str(self.gate.state)}
        if self.config.token is not None:
            given = (request.header("authorization") or "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.config.token.encode()):
                return 401, {"error": "a valid admin token is needed"}
        if path == "/status" and method == "GET":
            return 200, self.gate.status()
        if method != "POST" or path not in ("/hold", "/renew", "/resume"):
            return 404, {"error": f"no {method} {path} (POST /hold, /renew, /resume; GET /status)"}
        try:
            args = json.loads(request.body or b"{}")
            if not isinstance(args, dict):
                raise ValueError("the body must be a JSON object")
            return 200, await self._admin_post(path, args)
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        except Conflict as exc:
            return 409, {"error": str(exc)}
        except DrainTimeout as exc:
            return 504, {"error": str(exc)}

    async def _admin_post(self, path: str, args: dict[str, Any]) -> dict[str, Any]:
        if path == "/resume":
            hold_id = args.get("id")
            return await self.gate.resume(
                str(hold_id) if hold_id else None, float(args.get("wait", 0))
            )
        hold_id = str(args.get("id") or "")
        if not hold_id:
            raise ValueError("'id' is required: a hold id the holder chose")
        lease = float(args.get("lease", 120))
        if not 0 < lease <= 86400:
            raise ValueError("'lease' must be between 0 and 86400 seconds")
        if path == "/renew":
            return self.gate.renew(hold_id, lease)
        holder = str(args.get("holder") or "unknown")
        drain = float(args.get("drain_timeout", 30))
        return await self.gate.take(hold_id, holder, lease, max(0.0, drain))


def serve(config: GateConfig) -> int:
    """Run a gate until SIGTERM or SIGINT; logs go to stderr."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        asyncio.run(GateServer(config).run())
    except (OSError, ValueError) as exc:
        logging.getLogger("haprotect.quiesce.gate").error("gate: %s", exc)
        return 1
    return 0
