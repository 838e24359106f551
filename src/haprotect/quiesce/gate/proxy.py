"""Forward one complete request to the upstream and relay its response to the client.

One upstream connection per request (``Connection: close``), so nothing of
one request can leak into the next. The body goes up with a
``Content-Length``; a request that came with trailer fields goes up chunked,
carrying them. h11 reads the upstream's answer and writes it to the client
(chunked for an HTTP/1.1 client when the upstream gave no length). Failures
before the response head is relayed become a 502 (no connection, a broken
answer) or 504 (no answer in time); after that the client connection is
closed, since the response it got is incomplete.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass

import h11

from haprotect.quiesce.gate.http import (
    READ_SIZE,
    ClientConnection,
    Headers,
    Incoming,
    Request,
    end_to_end,
    tokens,
    trailer_fields,
    values,
)

log = logging.getLogger(__name__)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Upstream:
    """The web tier behind the gate, and how long to wait for it."""

    host: str
    port: int
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class _UpstreamFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def upstream_request(request: Request, upstream: Upstream, client: str) -> list[h11.Event]:
    """The events that send ``request`` upstream."""
    headers = [(k, v) for k, v in end_to_end(request.headers) if k.lower() != b"x-forwarded-for"]
    if not values(request.headers, b"host"):
        headers.append((b"Host", upstream.address.encode()))
    forwarded_for = b", ".join(values(request.headers, b"x-forwarded-for"))
    chain = forwarded_for + b", " + client.encode() if forwarded_for else client.encode()
    headers.append((b"X-Forwarded-For", chain))
    trailers = trailer_fields(request.trailers)
    if trailers:
        headers.append((b"Transfer-Encoding", b"chunked"))
    elif request.body or request.method in _BODY_METHODS:
        headers.append((b"Content-Length", str(len(request.body)).encode()))
    headers.append((b"Connection", b"close"))
    events: list[h11.Event] = [
        h11.Request(method=request.method, target=request.target, headers=headers)
    ]
    if request.body:
        events.append(h11.Data(data=request.body))
    events.append(h11.EndOfMessage(headers=trailers))
    return events


async def forward(
    request: Request,
    upstream: Upstream,
    client_conn: ClientConnection,
    *,
    client: str,
    close: bool,
) -> None:
    """Relay one exchange; ``client_conn.next_cycle()`` then says if the connection goes on."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(upstream.host, upstream.port), upstream.connect_timeout
        )
    except (OSError, TimeoutError) as exc:
        message = f"the upstream {upstream.address} is unreachable: {exc or type(exc).__name__}"
        await client_conn.answer(502, {"error": message}, close=close)
        return
    try:
        conn = h11.Connection(h11.CLIENT)
        try:
            response = await _send(request, upstream, client, conn, reader, writer)
        except _UpstreamFailed as exc:
            await client_conn.answer(exc.status, {"error": str(exc)}, close=close)
            return
        await _relay(request, response, upstream, conn, reader, client_conn, close)
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


async def _next_event(
    conn: h11.Connection, reader: asyncio.StreamReader, timeout: float
) -> Incoming:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await asyncio.wait_for(reader.read(READ_SIZE), timeout))


async def _send(
    request: Request,
    upstream: Upstream,
    client: str,
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> h11.Response:
    """Send the request upstream and read the head of its final response."""
    try:
        for event in upstream_request(request, upstream, client):
            writer.write(conn.send(event) or b"")
        await writer.drain()
        while True:
            answer = await _next_event(conn, reader, upstream.read_timeout)
            if isinstance(answer, h11.Response):
                return answer
            if isinstance(answer, h11.ConnectionClosed):
                raise _UpstreamFailed(502, f"the upstream {upstream.address} closed without answer")
            # an InformationalResponse (1xx): the client gets the final one only
    except TimeoutError:
        raise _UpstreamFailed(
            504, f"the upstream {upstream.address} did not answer in {upstream.read_timeout:g}s"
        ) from None
    except (OSError, h11.ProtocolError) as exc:
        raise _UpstreamFailed(502, f"the upstream {upstream.address} failed: {exc}") from None


async def _relay(
    request: Request,
    response: h11.Response,
    upstream: Upstream,
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    client_conn: ClientConnection,
    close: bool,
) -> None:
    received: Headers = list(response.headers.raw_items())
    headers = end_to_end(received)
    length = values(received, b"content-length")
    bodyless = request.method == "HEAD" or response.status_code in (204, 304)
    if b"chunked" in tokens(received, b"transfer-encoding") and not bodyless:
        length = []  # Transfer-Encoding beats Content-Length
    if length:
        headers.append((b"Content-Length", length[0]))
    if close:
        headers.append((b"Connection", b"close"))
    chunked = not length and not bodyless and client_conn.chunked_response
    await client_conn.send(
        h11.Response(status_code=response.status_code, headers=headers, reason=response.reason)
    )
    try:
        while True:
            event = await _next_event(conn, reader, upstream.read_timeout)
            if isinstance(event, h11.Data):
                await client_conn.send(h11.Data(data=event.data))
            elif isinstance(event, h11.EndOfMessage):
                trailers = trailer_fields(list(event.headers.raw_items())) if chunked else []
                await client_conn.send(h11.EndOfMessage(headers=trailers))
                return
            else:
                raise OSError("the upstream closed mid-response")
    except (OSError, TimeoutError, h11.ProtocolError) as exc:
        # The client got a partial response: next_cycle() sees the exchange unfinished.
        log.warning("response from %s broke off: %s", upstream.address, exc or type(exc).__name__)
