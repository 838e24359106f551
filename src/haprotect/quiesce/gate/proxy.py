"""Forward one complete request to the upstream and relay its response to the client.

One upstream connection per request (``Connection: close``), so nothing of
one request can leak into the next. Failures before the response head is
relayed become a 502 (no connection, a broken answer) or 504 (no answer in
time); after that the client connection is closed, since the response it
got is incomplete.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass

from haprotect.quiesce.gate.http import (
    COPY_CHUNK,
    REASONS,
    HttpError,
    Message,
    encode_head,
    json_response,
    read_head,
)

log = logging.getLogger(__name__)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Upstream:
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


def request_head(request: Message, upstream: Upstream, client: str) -> bytes:
    method, target, _ = request.start
    headers = request.forwarded_headers()
    if request.header("host") is None:
        headers.append(("Host", upstream.address))
    forwarded_for = request.header("x-forwarded-for")
    headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
    headers.append(("X-Forwarded-For", f"{forwarded_for}, {client}" if forwarded_for else client))
    if request.body or method in _BODY_METHODS:
        headers.append(("Content-Length", str(len(request.body))))
    headers.append(("Connection", "close"))
    return encode_head(f"{method} {target} HTTP/1.1", headers)


async def forward(
    request: Message,
    upstream: Upstream,
    writer: asyncio.StreamWriter,
    *,
    client: str,
    keep_alive: bool,
) -> bool:
    """Relay one exchange; True if the client connection can carry another request."""
    try:
        reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(upstream.host, upstream.port), upstream.connect_timeout
        )
    except (OSError, TimeoutError) as exc:
        message = f"the upstream {upstream.address} is unreachable: {exc or type(exc).__name__}"
        writer.write(json_response(502, {"error": message}, keep_alive=keep_alive))
        await writer.drain()
        return keep_alive
    try:
        return await _exchange(request, upstream, reader, up_writer, writer, client, keep_alive)
    except _UpstreamFailed as exc:
        writer.write(json_response(exc.status, {"error": str(exc)}, keep_alive=keep_alive))
        await writer.drain()
        return keep_alive
    finally:
        up_writer.close()
        with suppress(OSError):
            await up_writer.wait_closed()


async def _exchange(
    request: Message,
    upstream: Upstream,
    reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
    writer: asyncio.StreamWriter,
    client: str,
    keep_alive: bool,
) -> bool:
    try:
        up_writer.write(request_head(request, upstream, client) + request.body)
        await up_writer.drain()
        while True:
            head = await asyncio.wait_for(read_head(reader, response=True), upstream.read_timeout)
            if head is None:
                raise _UpstreamFailed(502, f"the upstream {upstream.address} closed without answer")
            (version, code, reason), headers = head
            if not code.isdigit() or not version.startswith("HTTP/"):
                raise _UpstreamFailed(502, f"the upstream sent a malformed status line {code!r}")
            status = int(code)
            if status == 101:
                raise _UpstreamFailed(
                    502, "the upstream switched protocols; the gate cannot relay that"
                )
            if status >= 200:
                break
    except TimeoutError:
        raise _UpstreamFailed(
            504, f"the upstream {upstream.address} did not answer in {upstream.read_timeout:g}s"
        ) from None
    except (OSError, HttpError) as exc:
        raise _UpstreamFailed(502, f"the upstream {upstream.address} failed: {exc}") from None
    response = Message((version, code, reason), headers)
    out = response.forwarded_headers()
    bodyless = request.start[0] == "HEAD" or status in (204, 304)
    chunked = "chunked" in response.tokens("transfer-encoding")
    length = response.header("content-length")
    if bodyless:
        if length is not None and length.isdigit():
            out.append(("Content-Length", length))
    elif chunked:
        out.append(("Transfer-Encoding", "chunked"))
    elif length is not None and length.isdigit():
        out.append(("Content-Length", length))
    else:
        keep_alive = False  # delimited by the upstream closing: so must we
    out.append(("Connection", "keep-alive" if keep_alive else "close"))
    writer.write(encode_head(f"HTTP/1.1 {status} {reason or REASONS.get(status, '')}", out))
    try:
        if bodyless:
            pass
        elif chunked:
            await _copy_chunked(reader, writer, upstream.read_timeout)
        elif length is not None and length.isdigit():
            await _copy_exactly(reader, writer, int(length), upstream.read_timeout)
        else:
            await _copy_to_eof(reader, writer, upstream.read_timeout)
        await writer.drain()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        log.warning("response from %s broke off: %s", upstream.address, exc or type(exc).__name__)
        return False  # the client got a partial response: close its connection
    return keep_alive


async def _copy_exactly(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int, timeout: float
) -> None:
    while size > 0:
        data = await asyncio.wait_for(reader.read(min(size, COPY_CHUNK)), timeout)
        if not data:
            raise asyncio.IncompleteReadError(b"", size)
        writer.write(data)
        size -= len(data)
        await writer.drain()


async def _copy_to_eof(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
) -> None:
    while data := await asyncio.wait_for(reader.read(COPY_CHUNK), timeout):
        writer.write(data)
        await writer.drain()


async def _copy_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
) -> None:
    while True:
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)
        writer.write(size_line)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise OSError("malformed chunk size from the upstream") from None
        if size == 0:
            while True:
                line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)
                writer.write(line)
                if line == b"\r\n":
                    return
        await _copy_exactly(reader, writer, size + 2, timeout)
