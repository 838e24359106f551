"""Just enough HTTP/1.1 for a reverse proxy, on asyncio streams.

Requests are read whole (head, then a ``Content-Length`` or chunked body,
bounded) because a held request must be complete before it waits in the
queue. Responses are relayed as they come (``Content-Length``, chunked, or
until the upstream closes). Hop-by-hop headers are dropped both ways.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
COPY_CHUNK = 64 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class HttpError(Exception):
    """A request the gate answers itself (400, 413, ...), one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Message:
    """A request (``start`` = method, target, version) or a response head."""

    start: tuple[str, str, str]
    headers: list[tuple[str, str]]
    body: bytes = b""
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        found = [v for k, v in self.headers if k.lower() == lowered]
        return ", ".join(found) if found else None

    def tokens(self, name: str) -> set[str]:
        value = self.header(name) or ""
        return {t.strip().lower() for t in value.split(",") if t.strip()}

    @property
    def keep_alive(self) -> bool:
        version, connection = self.start[2], self.tokens("connection")
        if version == "HTTP/1.1":
            return "close" not in connection
        return "keep-alive" in connection

    def forwarded_headers(self) -> list[tuple[str, str]]:
        """The end-to-end headers: hop-by-hop ones and those ``Connection`` names dropped."""
        named = self.tokens("connection")
        return [(k, v) for k, v in self.headers if k.lower() not in HOP_BY_HOP | named]


Head = tuple[tuple[str, str, str], list[tuple[str, str]]]


async def read_head(reader: asyncio.StreamReader, *, response: bool = False) -> Head | None:
    """The start line and headers; None if the peer closed cleanly before sending any."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, f"request head over {MAX_HEAD} bytes") from None
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if response and len(parts) == 2:
        parts.append("")
    if len(parts) != 3:
        raise HttpError(400, f"malformed start line {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return (parts[0], parts[1], parts[2]), headers


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int
) -> Message | None:
    head = await read_head(reader)
    if head is None:
        return None
    start, headers = head
    if start[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(400, f"unsupported protocol {start[2][:20]!r}")
    message = Message(start, headers)
    if "100-continue" in message.tokens("expect") and start[2] == "HTTP/1.1":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    message.body = await _read_body(reader, message, max_body)
    return message


async def _read_body(reader: asyncio.StreamReader, message: Message, limit: int) -> bytes:
    codings = message.tokens("transfer-encoding")
    if codings:
        if codings != {"chunked"}:
            coding = message.header("transfer-encoding")
            raise HttpError(501, f"transfer coding {coding} not supported")
        return await read_chunked(reader, limit)
    length = message.header("content-length")
    if length is None:
        return b""
    if not length.isdigit():
        raise HttpError(400, f"bad Content-Length {length[:20]!r}")
    size = int(length)
    if size > limit:
        raise HttpError(413, f"body of {size} bytes is over the gate's limit of {limit}")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise HttpError(400, "the body ended early") from None


async def read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    try:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size_text = size_line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError(400, "malformed chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers: dropped
                return bytes(body)
            if len(body) + size > limit:
                raise HttpError(413, f"body over the gate's limit of {limit} bytes")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise HttpError(400, "the chunked body ended early") from None


def encode_head(start: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [start, *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def json_response(
    status: int,
    body: object,
    *,
    keep_alive: bool = False,
    extra: list[tuple[str, str]] | None = None,
) -> bytes:
    data = json.dumps(body).encode() + b"\n"
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Connection", "keep-alive" if keep_alive else "close"),
        *(extra or []),
    ]
    return encode_head(f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", headers) + data
