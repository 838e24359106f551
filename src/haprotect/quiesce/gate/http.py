"""HTTP/1.1 for the gate on asyncio streams: h11 parses and frames, nothing here does.

h11 (sans-IO) reads every request and response and writes every message,
so the framing rules (Content-Length, chunked, bodyless answers, keep-alive,
pipelining) are its, not hand-written ones. On top of it the gate adds what
a front proxy needs:

- a request is read whole (a held request must be complete before it waits
  in the queue), its head and body bounded;
- a request an upstream could frame differently from the gate is refused,
  even where h11 would accept it: both ``Content-Length`` and
  ``Transfer-Encoding``, ``Transfer-Encoding`` in HTTP/1.0, obsolete line
  folding;
- every refusal is answered (400, 413, 431, 501) and the connection closed.

Hop-by-hop headers are dropped both ways; the gate writes its own framing.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus

import h11

MAX_HEAD = 64 * 1024
READ_SIZE = 64 * 1024
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"content-length",
    }
)
#: Fields a trailer section may not carry (RFC 9110, 6.5.1): framing, routing,
#: authentication, request modifiers, content processing. Dropped, never forwarded.
NOT_TRAILERS = HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"cookie",
    b"set-cookie",
    b"cache-control",
    b"max-forwards",
    b"pragma",
    b"range",
    b"if-match",
    b"if-none-match",
    b"if-modified-since",
    b"if-unmodified-since",
    b"if-range",
    b"content-type",
    b"content-encoding",
    b"content-range",
    b"www-authenticate",
    b"retry-after",
    b"location",
    b"vary",
    b"age",
    b"date",
    b"expires",
}
_BLANK_LINE = re.compile(rb"\n\r?\n")
_FOLD = re.compile(rb"\n[ \t]")

Headers = list[tuple[bytes, bytes]]
#: What h11's next_event() gives once it has data (NEED_DATA is read past).
Incoming = h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]


class HttpError(Exception):
    """A request the gate answers itself (400, 413, ...), one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for k, v in headers if k.lower() == name]


def tokens(headers: Headers, name: bytes) -> set[bytes]:
    return {t.strip().lower() for v in values(headers, name) for t in v.split(b",") if t.strip()}


def end_to_end(headers: Headers) -> Headers:
    """The headers a proxy forwards: hop-by-hop ones and those ``Connection`` names dropped."""
    named = tokens(headers, b"connection")
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | named]


def trailer_fields(headers: Headers) -> Headers:
    """The trailer fields that may be forwarded (not framing, routing, auth...)."""
    named = tokens(headers, b"connection")
    return [(k, v) for k, v in headers if k.lower() not in NOT_TRAILERS | named]


@dataclass(slots=True)
class Request:
    """One request, read whole."""

    method: str
    target: str
    http_version: str
    headers: Headers
    body: bytes = b""
    trailers: Headers = field(default_factory=list)

    def header(self, name: str) -> str | None:
        found = values(self.headers, name.lower().encode())
        return b", ".join(found).decode("latin-1") if found else None


class ClientConnection:
    """The gate's end of one client connection: h11 in the server role."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_head: int = MAX_HEAD
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.max_head = max_head
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)

    async def read_request(self, max_body: int) -> Request | None:
        """The next request with its body; None if the client closed between requests.

        Raises :class:`HttpError` for a request the gate refuses.
        """
        raw = bytearray(self.h11.trailing_data[0])  # pipelined bytes already received
        try:
            event = await self._next_event(raw)
            if isinstance(event, h11.ConnectionClosed):
                return None
            if not isinstance(event, h11.Request):
                raise HttpError(400, f"unexpected {type(event).__name__}")
            self._refuse_ambiguous(event, bytes(raw))
            headers = list(event.headers.raw_items())
            for length in values(headers, b"content-length"):
                if int(length) > max_body:
                    raise HttpError(
                        413, f"body of {int(length)} bytes is over the gate's limit of {max_body}"
                    )
            if self.h11.they_are_waiting_for_100_continue:
                await self.send(h11.InformationalResponse(status_code=100, headers=[]))
            request = Request(
                event.method.decode("ascii"),
                event.target.decode("ascii"),
                event.http_version.decode("ascii"),
                headers,
            )
            body = bytearray()
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > max_body:
                        raise HttpError(413, f"body over the gate's limit of {max_body} bytes")
                elif isinstance(event, h11.EndOfMessage):
                    request.trailers = list(event.headers.raw_items())
                    break
                else:
                    raise HttpError(400, "the request ended early")
        except h11.RemoteProtocolError as exc:
            raise HttpError(exc.error_status_hint, f"malformed request: {exc}") from None
        request.body = bytes(body)
        return request

    def _refuse_ambiguous(self, request: h11.Request, raw: bytes) -> None:
        """Refuse what h11 accepts but an upstream might frame differently."""
        end = _BLANK_LINE.search(raw)
        head = raw[: end.end()] if end else raw
        if len(head) > self.max_head:
            raise HttpError(431, f"request head over {self.max_head} bytes")
        if _FOLD.search(head):
            raise HttpError(400, "obsolete line folding in the request head is refused")
        names = {name for name, _ in request.headers}
        if b"transfer-encoding" in names and b"content-length" in names:
            raise HttpError(400, "both Content-Length and Transfer-Encoding: refused")
        if b"transfer-encoding" in names and request.http_version != b"1.1":
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request is refused")

    async def _next_event(self, raw: bytearray | None = None) -> Incoming:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_SIZE)
            if raw is not None:
                raw += data
            self.h11.receive_data(data)

    async def send(self, *events: h11.Event) -> None:
        for event in events:
            data = self.h11.send(event)
            if data:
                self.writer.write(data)
        await self.writer.drain()

    async def answer(
        self,
        status: int,
        body: object,
        *,
        close: bool = False,
        extra: Headers | None = None,
    ) -> None:
        """Send a JSON answer of the gate's own (an error, a 503, the admin API)."""
        data = json.dumps(body).encode() + b"\n"
        headers: Headers = [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(data)).encode()),
            *(extra or []),
        ]
        if close:
            headers.append((b"Connection", b"close"))
        await self.send(
            h11.Response(status_code=status, headers=headers, reason=reason(status)),
            h11.Data(data=data),
            h11.EndOfMessage(),
        )

    async def refuse(self, error: HttpError) -> None:
        """Answer a refused request, if h11 still lets us; the connection is then closed."""
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await self.answer(error.status, {"error": error.message}, close=True)

    def next_cycle(self) -> bool:
        """After an exchange: True if the connection can carry another request."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    @property
    def chunked_response(self) -> bool:
        """Whether a response without a length goes out chunked (else: until close)."""
        return self.h11.their_http_version == b"1.1"


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
