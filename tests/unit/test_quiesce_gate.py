"""The HTTP gate as a real process in front of a small upstream: proxying, hold, replay, lease."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest

from haprotect.errors import QuiesceError
from haprotect.quiesce import QuiesceSpec, held
from haprotect.quiesce.http_gate import HttpGateQuiescer


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.connections += 1
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        server: Upstream = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.rpartition("=")[2]))
        with server.lock:
            server.seen.append(body or self.path)
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        data = json.dumps(
            {
                "path": self.path,
                "body": body,
                "forwarded_for": self.headers.get("X-Forwarded-For"),
                "connection": self.headers.get("Connection"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GateProcess:
    def __init__(self, upstream_port: int, tmp: Path, *extra: str) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.log = tmp / f"gate-{self.port}.log"
        argv = [
            sys.executable,
            "-m",
            "haprotect.quiesce.gate",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--upstream",
            f"127.0.0.1:{upstream_port}",
            "--admin",
            f"127.0.0.1:{self.admin_port}",
            *extra,
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.client = httpx.Client(trust_env=False, timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client.get(f"{self.admin}/health")
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"the gate did not start: {self.log.read_text()}")

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(f"{self.admin}{path}", json=body or {})

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.get(f"{self.admin}/status").json()
        return answer

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(15)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def gate(upstream: Upstream, tmp_path: Path) -> Iterator[GateProcess]:
    process = GateProcess(
        upstream.server_address[1], tmp_path, "--max-queue", "5", "--max-wait", "2"
    )
    yield process
    process.stop()


def wait_for(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_proxies_bodies_keep_alive_and_chunked_answers(gate: GateProcess) -> None:
    with httpx.Client(trust_env=False) as client:
        first = client.post(f"{gate.url}/a?x=1", content=b"one").json()
        second = client.post(f"{gate.url}/b", content=b"two").json()
        chunked = client.get(f"{gate.url}/chunked")
    assert (first["path"], first["body"], second["body"]) == ("/a?x=1", "one", "two")
    assert first["forwarded_for"] == "127.0.0.1" and first["connection"] == "close"
    assert chunked.text == "hello chunked world"


def test_a_chunked_request_body_is_forwarded_whole(gate: GateProcess) -> None:
    def parts() -> Iterator[bytes]:
        yield b"part1-"
        yield b"part2"

    answer = httpx.post(f"{gate.url}/up", content=parts(), trust_env=False).json()
    assert answer["body"] == "part1-part2"


def test_hold_waits_for_requests_in_flight(gate: GateProcess) -> None:
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(httpx.get, f"{gate.url}/slow?s=1.0", trust_env=False, timeout=10)
        assert wait_for(lambda: gate.status()["in_flight"] == 1)
        started = time.monotonic()
        held = gate.post("/hold", {"id": "h1", "lease": 30, "drain_timeout": 10})
        took = time.monotonic() - started
        assert held.status_code == 200
        assert slow.result(timeout=5).status_code == 200
    assert held.json()["in_flight"] == 0 and held.json()["state"] == "held"
    assert 0.5 < took < 5
    assert gate.post("/resume", {"id": "h1"}).json()["resumed"] is True


def send_numbered(
    gate: GateProcess, pool: ThreadPoolExecutor, count: int
) -> list[Future[httpx.Response]]:
    futures = []
    for i in range(count):
        futures.append(
            pool.submit(
                httpx.post, f"{gate.url}/n", content=str(i).encode(), trust_env=False, timeout=30
            )
        )
        assert wait_for(lambda n=i + 1: gate.status()["queued"] == n), gate.status()
    return futures


def test_held_requests_queue_then_replay_in_order(gate: GateProcess, upstream: Upstream) -> None:
    assert gate.post("/hold", {"id": "h", "lease": 30}).status_code == 200
    with ThreadPoolExecutor(5) as pool:
        futures = send_numbered(gate, pool, 5)
        time.sleep(0.3)
        assert not any(f.done() for f in futures), "a held request went through"
        assert upstream.seen == []
        resumed = gate.post("/resume", {"id": "h", "wait": 10}).json()
        answers = [f.result() for f in futures]
    assert resumed["resumed"] is True and resumed["queued_at_resume"] == 5
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["body"] for a in answers] == [str(i) for i in range(5)]
    assert upstream.seen == [str(i) for i in range(5)]
    assert resumed["state"] == "open" and resumed["counters"]["replayed"] == 5


def test_over_the_bound_a_request_gets_503_with_retry_after(gate: GateProcess) -> None:
    gate.post("/hold", {"id": "h", "lease": 30})
    with ThreadPoolExecutor(6) as pool:
        futures = send_numbered(gate, pool, 5)
        refused = httpx.post(f"{gate.url}/n", content=b"6th", trust_env=False)
        gate.post("/resume", {"id": "h"})
        assert all(f.result().status_code == 200 for f in futures)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
    assert refused.json()["reason"] == "queue-full"
    assert "paused for a consistent backup" in refused.json()["error"]
    assert gate.status()["counters"]["rejected_full"] == 1


def test_a_request_held_past_the_deadline_gets_503(gate: GateProcess, upstream: Upstream) -> None:
    gate.post("/hold", {"id": "h", "lease": 30})
    started = time.monotonic()
    answer = httpx.post(f"{gate.url}/late", content=b"late", trust_env=False, timeout=10)
    waited = time.monotonic() - started
    assert answer.status_code == 503 and answer.json()["reason"] == "waited-too-long"
    assert answer.headers["Retry-After"] == "2"
    assert 1.8 < waited < 5
    gate.post("/resume", {"id": "h"})
    time.sleep(0.2)
    assert "late" not in upstream.seen, "a request answered 503 was still forwarded"


def test_the_lease_releases_a_forgotten_hold(gate: GateProcess) -> None:
    gate.post("/hold", {"id": "forgotten", "lease": 0.5})
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            httpx.post, f"{gate.url}/n", content=b"x", trust_env=False, timeout=10
        )
        assert pending.result().status_code == 200
    status = gate.status()
    assert status["state"] == "open" and status["hold"] is None
    assert status["last_release"]["reason"] == "lease-expired"
    assert status["counters"]["lease_expiries"] == 1


def test_renew_extends_the_lease(gate: GateProcess) -> None:
    gate.post("/hold", {"id": "r", "lease": 0.6})
    for _ in range(4):
        time.sleep(0.3)
        assert gate.post("/renew", {"id": "r", "lease": 0.6}).status_code == 200
    assert gate.status()["state"] == "held"
    assert gate.post("/renew", {"id": "other", "lease": 5}).status_code == 409
    gate.post("/resume", {"id": "r"})


def test_a_second_holder_is_refused_and_cannot_resume_the_first(gate: GateProcess) -> None:
    assert gate.post("/hold", {"id": "a", "holder": "first"}).status_code == 200
    refused = gate.post("/hold", {"id": "b", "holder": "second"})
    assert refused.status_code == 409 and "held by first" in refused.json()["error"]
    not_mine = gate.post("/resume", {"id": "b"}).json()
    assert not_mine["resumed"] is False and gate.status()["state"] == "held"
    assert gate.post("/resume", {"id": "a"}).json()["resumed"] is True
    again = gate.post("/resume", {"id": "a"}).json()
    assert again["resumed"] is False and again["reason"] == "resumed"


def test_a_drain_timeout_releases_the_hold(gate: GateProcess) -> None:
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, f"{gate.url}/slow?s=0.8", trust_env=False, timeout=10)
        assert wait_for(lambda: gate.status()["in_flight"] == 1)
        refused = gate.post("/hold", {"id": "d", "drain_timeout": 0.2})
        assert slow.result().status_code == 200
    assert refused.status_code == 504 and "still in flight" in refused.json()["error"]
    assert gate.status()["state"] == "open"


def test_the_admin_api_wants_the_token_when_it_has_one(upstream: Upstream, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    gate = GateProcess(upstream.server_address[1], tmp_path, "--token-file", str(token))
    try:
        assert gate.post("/hold", {"id": "x"}).status_code == 401
        assert gate.client.get(f"{gate.admin}/health").status_code == 200
        spec = QuiesceSpec(
            "http-gate", "web", options={"admin_url": gate.admin, "token_file": str(token)}
        )
        quiescer = HttpGateQuiescer()
        report = quiescer.hold(spec)
        auth = {"Authorization": "Bearer s3cret"}
        status = gate.client.get(f"{gate.admin}/status", headers=auth).json()
        assert status["state"] == "held" and status["hold"]["id"] == report.details["hold_id"]
        assert gate.client.get(f"{gate.admin}/status").status_code == 401
        assert quiescer.resume(spec).details["hold_id"] == report.details["hold_id"]
    finally:
        gate.stop()


def test_the_quiescer_holds_resumes_and_reports(gate: GateProcess) -> None:
    spec = QuiesceSpec("http-gate", "web", lease_seconds=30, options={"admin_url": gate.admin})
    quiescer = HttpGateQuiescer()
    report = quiescer.hold(spec)
    status = gate.status()
    assert status["state"] == "held" and status["hold"]["id"] == report.details["hold_id"]
    assert status["hold"]["lease_seconds"] == 30
    assert f"pid {os.getpid()}" in status["hold"]["holder"]
    resumed = quiescer.resume(spec)
    assert resumed.details["hold_id"] == report.details["hold_id"]
    assert gate.status()["state"] == "open"
    assert quiescer.resume(spec).details == {}  # resume again: nothing held, nothing done


def test_the_quiescer_reports_a_lease_that_ran_out(gate: GateProcess) -> None:
    spec = QuiesceSpec("http-gate", "web", lease_seconds=0.3, options={"admin_url": gate.admin})
    quiescer = HttpGateQuiescer()
    quiescer.hold(spec)
    assert wait_for(lambda: gate.status()["state"] == "open")
    with pytest.raises(QuiesceError, match="lease ran out before resume"):
        quiescer.resume(spec)


def test_an_unreachable_gate_is_one_line() -> None:
    spec = QuiesceSpec(
        "http-gate",
        "web",
        timeout_seconds=2,
        options={"admin_url": f"http://127.0.0.1:{free_port()}"},
    )
    with pytest.raises(
        QuiesceError, match=r"^http-gate of tier web: POST http://127\.0\.0\.1:\d+/hold: "
    ):
        HttpGateQuiescer().hold(spec)


def test_held_renews_the_gates_lease_through_a_cut_longer_than_the_lease(
    gate: GateProcess,
) -> None:
    spec = QuiesceSpec("http-gate", "web", lease_seconds=0.6, options={"admin_url": gate.admin})
    with held([spec], {"http-gate": HttpGateQuiescer()}) as holding:
        time.sleep(2.0)  # a cut three times as long as the lease
        assert gate.status()["state"] == "held"
    assert holding.issues == ()
    assert gate.status()["state"] == "open"


# -- HTTP framing: what an upstream could read differently is refused ------------------


class RecordingUpstream(socketserver.ThreadingTCPServer):
    """An upstream keeping the bytes and the parsed events of every request it gets."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.requests: list[tuple[bytes, list[Any]]] = []


class RecordingHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: RecordingUpstream = self.server  # type: ignore[assignment]
        conn = h11.Connection(h11.SERVER)
        raw, events = bytearray(), []
        while not events or not isinstance(events[-1], h11.EndOfMessage | h11.ConnectionClosed):
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = self.request.recv(65536)
                raw += data
                conn.receive_data(data)
            else:
                events.append(event)
        server.requests.append((bytes(raw), events))
        if isinstance(events[0], h11.Request) and events[0].target == b"/eof":
            self.request.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close")
            return
        answer = h11.Response(status_code=200, headers=[("Content-Length", "2")])
        for event in (answer, h11.Data(data=b"ok"), h11.EndOfMessage()):
            self.request.sendall(conn.send(event) or b"")


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[tuple[RecordingUpstream, GateProcess]]:
    server = RecordingUpstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    process = GateProcess(server.server_address[1], tmp_path)
    yield server, process
    process.stop()
    server.shutdown()
    server.server_close()


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the gate sends until it closes (a gate keeping the connection times out)."""
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes on one connection; everything the gate sent until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_to_close(sock)


SMUGGLING = {
    "content-length-and-chunked": (
        b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "two-content-lengths": (
        b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    ),
    "obs-fold": (
        b"POST /s HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n Transfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    ),
    "bare-cr-in-a-header": (
        b"POST /s HTTP/1.1\r\nHost: x\r\nX-Note: a\rTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    ),
    "space-before-colon": (
        b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    ),
    "chunked-in-http-1.0": (
        b"POST /s HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ),
    "chunk-size-with-0x": (
        b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n"
    ),
    "chunk-data-without-crlf": (
        b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"
    ),
    "signed-content-length": b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
    "oversized-head": b"GET /s HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("attempt", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_an_ambiguous_request_is_refused_and_the_connection_closed(
    attempt: bytes, gate: GateProcess, upstream: Upstream
) -> None:
    answer = exchange(gate.port, attempt)
    status = answer.split(b" ", 2)[1]
    assert status in (b"400", b"431"), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1 and b"connection: close" in answer.lower()
    time.sleep(0.2)
    assert upstream.connections == 0 and upstream.seen == []


def test_an_unknown_transfer_coding_is_not_implemented(
    gate: GateProcess, upstream: Upstream
) -> None:
    attempt = b"POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    answer = exchange(gate.port, attempt)
    assert answer.startswith(b"HTTP/1.1 501 ") and b"connection: close" in answer.lower()
    assert upstream.connections == 0


def test_a_body_over_the_limit_is_refused_unread(upstream: Upstream, tmp_path: Path) -> None:
    gate = GateProcess(upstream.server_address[1], tmp_path, "--max-body", "8")
    try:
        declared = exchange(
            gate.port, b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n123456789"
        )
        chunked = exchange(
            gate.port,
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\n12345\r\n4\r\n6789\r\n0\r\n\r\n",
        )
    finally:
        gate.stop()
    assert declared.startswith(b"HTTP/1.1 413 ") and chunked.startswith(b"HTTP/1.1 413 ")
    assert upstream.connections == 0


def test_a_chunked_body_with_extensions_and_trailers_is_forwarded_with_its_trailers(
    recorder: tuple[RecordingUpstream, GateProcess],
) -> None:
    upstream, gate = recorder
    answer = exchange(
        gate.port,
        b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
        b'5;name=value\r\nhello\r\n6;q="a;b"\r\n world\r\n0\r\n'
        b"X-Checksum: abc\r\nContent-Length: 99\r\n\r\n"
        b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2
    (_, first), (_, second) = upstream.requests
    body = b"".join(e.data for e in first if isinstance(e, h11.Data))
    end = first[-1]
    assert body == b"hello world"
    assert isinstance(end, h11.EndOfMessage) and list(end.headers) == [(b"x-checksum", b"abc")]
    assert isinstance(second[0], h11.Request) and second[0].target == b"/after"


def test_bare_lf_line_endings_never_reach_the_upstream(
    recorder: tuple[RecordingUpstream, GateProcess],
) -> None:
    upstream, gate = recorder
    answer = exchange(
        gate.port, b"GET /lf HTTP/1.1\r\nHost: x\nX-Injected: 1\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 ")
    ((raw, events),) = upstream.requests
    assert raw.count(b"\n") == raw.count(b"\r\n"), raw
    request = events[0]
    assert isinstance(request, h11.Request)
    assert (b"host", b"x") in list(request.headers)
    assert (b"x-injected", b"1") in list(request.headers)


def test_pipelined_requests_are_served_in_order_on_one_connection(
    gate: GateProcess, upstream: Upstream
) -> None:
    answer = exchange(
        gate.port,
        b"POST /p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
        b"POST /p2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
        b"GET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert answer.count(b"HTTP/1.1 200 ") == 3
    assert answer.index(b'"body": "one"') < answer.index(b'"body": "two"')
    assert answer.index(b'"body": "two"') < answer.index(b'"path": "/p3"')
    assert upstream.seen == ["one", "two", "/p3"]


def test_expect_100_continue_is_answered_before_the_body(gate: GateProcess) -> None:
    with socket.create_connection(("127.0.0.1", gate.port), timeout=10) as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"body")
        received = read_to_close(sock)
    assert received.startswith(b"HTTP/1.1 200 ") and b'"body": "body"' in received


def test_an_answer_delimited_by_close_goes_chunked_and_keeps_the_connection(
    recorder: tuple[RecordingUpstream, GateProcess],
) -> None:
    upstream, gate = recorder
    answer = exchange(
        gate.port,
        b"GET /eof HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /eof HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2 and len(upstream.requests) == 2
    assert b"transfer-encoding: chunked" in answer.lower()
    assert answer.count(b"until-close") == 2
