"""haproxy: new connections wait while held, are served at resume, and a lease restores HAProxy.

Against a real HAProxy (Debian's package) on loopback, in front of a small
HTTP server; its runtime API is a unix socket in a short temporary directory.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.conftest import require_component

from haprotect.errors import QuiesceError
from haprotect.lab.haproxy import find_haproxy, render_config
from haprotect.ports import free_ports
from haprotect.quiesce import QuiesceSpec, quiescer_for
from haprotect.quiesce import haproxy_api as api
from haprotect.quiesce.haproxy import HaproxyQuiescer, deadlocks
from haprotect.quiesce.haproxy_config import parse_config

MAXCONN = 500  #: the frontend's, as render_config writes it
GLOBAL_MAXCONN = 2000


class Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@dataclass
class Proxy:
    """A running HAProxy: its runtime API socket, its frontend's port, its config file."""

    socket: str
    port: int
    conffile: Path
    process: subprocess.Popen[bytes]

    def limits(self) -> tuple[int, int]:
        """(global maxconn, the frontend's maxconn)."""
        info = api.info(self.socket, 5.0)
        return int(info["Maxconn"]), api.frontends(self.socket, 5.0)["web"].limit


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    binary = find_haproxy()
    require_component("haproxy", binary is not None, "scripts/bootstrap installs haproxy")
    assert binary is not None
    root = Path(tempfile.mkdtemp(prefix="hpx-"))
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    (port,) = free_ports(1)
    sock = root / "admin.sock"
    conffile = root / "haproxy.cfg"
    conffile.write_text(
        render_config(listen=port, upstream=upstream.server_address[1], socket=sock)
    )
    process = subprocess.Popen(
        [binary, "-db", "-f", str(conffile)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                api.info(str(sock), 1.0)
                break
            except api.RuntimeApiError:
                assert process.poll() is None, "haproxy exited at start"
                assert time.monotonic() < deadline, "haproxy's runtime API did not answer"
                time.sleep(0.05)
        yield Proxy(str(sock), port, conffile, process)
        assert process.poll() is None, "haproxy died during the test"
    finally:
        process.terminate()
        process.wait(10)
        upstream.shutdown()
        upstream.server_close()
        shutil.rmtree(root, ignore_errors=True)


def spec(proxy: Proxy, timeout: float = 5.0, lease: float = 60.0, **options: object) -> QuiesceSpec:
    given: dict[str, object] = {
        "socket": proxy.socket,
        "frontends": ["web"],
        "pin": f"127.0.0.1:{proxy.port}",
    }
    given.update(options)
    return QuiesceSpec("haproxy", "web", timeout, lease, options=given)


class Request:
    """One GET through HAProxy in a thread: whether and what it answered."""

    def __init__(self, port: int) -> None:
        self.status: int | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(port,), daemon=True)
        self._thread.start()

    def _run(self, port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/")
            self.status = conn.getresponse().status
        except OSError as exc:
            self.error = str(exc)
        finally:
            conn.close()

    def done(self, within: float) -> bool:
        self._thread.join(within)
        return not self._thread.is_alive()


def restored(proxy: Proxy, within: float) -> None:
    """Wait until HAProxy has its configured limits again."""
    deadline = time.monotonic() + within
    while proxy.limits() != (GLOBAL_MAXCONN, MAXCONN):
        assert time.monotonic() < deadline, f"maxconn still {proxy.limits()} after {within:g}s"
        time.sleep(0.1)


def test_the_registry_knows_it() -> None:
    assert quiescer_for("haproxy").name == "haproxy"


def test_a_held_haproxy_makes_new_connections_wait_and_resume_serves_them(proxy: Proxy) -> None:
    quiescer = HaproxyQuiescer()
    held = spec(proxy)
    report = quiescer.hold(held)
    assert report.details["frontends"] == "web"
    assert report.details["method"] in ("frontend", "global")
    waiting = Request(proxy.port)
    assert not waiting.done(within=1.5), "a request went through a held HAProxy"
    resumed = quiescer.resume(held)
    assert waiting.done(within=5.0) and waiting.status == 200, waiting.error
    assert proxy.limits() == (GLOBAL_MAXCONN, MAXCONN)
    assert resumed.details["restored"] in (f"web={MAXCONN}", f"global={GLOBAL_MAXCONN}")


def test_the_frontend_method_is_refused_where_restoring_it_deadlocks(proxy: Proxy) -> None:
    version = api.info(proxy.socket, 5.0)["Version"]
    quiescer = HaproxyQuiescer()
    held = spec(proxy, method="frontend")
    if deadlocks(version, None):
        with pytest.raises(QuiesceError, match="haproxy issue 2726") as caught:
            quiescer.hold(held)
        assert proxy.socket in str(caught.value) and version in str(caught.value)
        assert proxy.limits() == (GLOBAL_MAXCONN, MAXCONN)
        return
    quiescer.hold(held)
    waiting = Request(proxy.port)
    assert not waiting.done(within=1.0)
    quiescer.resume(held)
    assert waiting.done(within=5.0) and waiting.status == 200


def test_the_frontend_method_sets_and_restores_the_frontends_maxconn(proxy: Proxy) -> None:
    """No connection arrives while held: on a version with the deadlock, that is safe too."""
    version = api.info(proxy.socket, 5.0)["Version"]
    quiescer = HaproxyQuiescer()
    held = spec(proxy, method="frontend", allow_version=version)
    report = quiescer.hold(held)
    assert (report.details["method"], report.details["previous_maxconn"]) == (
        "frontend",
        f"web={MAXCONN}",
    )
    assert proxy.limits() == (GLOBAL_MAXCONN, 0)
    assert quiescer.resume(held).details["restored"] == f"web={MAXCONN}"
    assert proxy.limits() == (GLOBAL_MAXCONN, MAXCONN)


def test_a_frontend_already_at_maxconn_0_is_not_held_again(proxy: Proxy) -> None:
    version = api.info(proxy.socket, 5.0)["Version"]
    api.set_maxconn(proxy.socket, "web", 0, 5.0)
    try:
        with pytest.raises(QuiesceError, match="already has maxconn 0"):
            HaproxyQuiescer().hold(spec(proxy, method="frontend", allow_version=version))
    finally:
        api.set_maxconn(proxy.socket, "web", MAXCONN, 5.0)


def test_versions_with_the_restore_deadlock() -> None:
    assert deadlocks("2.6.12-1+deb12u4", None)
    assert deadlocks("3.0.4", None)
    assert not deadlocks("2.2.33", None)
    assert not deadlocks("3.1.0", None)
    assert not deadlocks("3.2.4-1", None)
    assert not deadlocks("2.6.12-1+deb12u9", "2.6.12-1+deb12u9")
    assert deadlocks("nonsense", None)


def hold_in_a_process(proxy: Proxy, **extra: str) -> subprocess.Popen[str]:
    """A process that holds ``proxy`` and says ``held``, then sleeps."""
    options = {"socket": proxy.socket, "frontends": ["web"], "pin": f"127.0.0.1:{proxy.port}"}
    options.update(extra)
    holder = textwrap.dedent(
        f"""
        import time
        from haprotect.quiesce import QuiesceSpec
        from haprotect.quiesce.haproxy import HaproxyQuiescer
        spec = QuiesceSpec("haproxy", "web", 5.0, 60.0, options={options!r})
        quiescer = HaproxyQuiescer()
        quiescer.hold(spec)
        print("held", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_kill_9_of_a_frontend_holder_lets_the_keeper_restore_its_maxconn(proxy: Proxy) -> None:
    version = api.info(proxy.socket, 5.0)["Version"]
    process = hold_in_a_process(proxy, method="frontend", allow_version=version)
    try:
        assert proxy.limits() == (GLOBAL_MAXCONN, 0)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        restored(proxy, within=10.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_kill_9_of_the_holder_lets_the_keeper_restore_haproxy(proxy: Proxy) -> None:
    process = hold_in_a_process(proxy)
    try:
        waiting = Request(proxy.port)
        assert not waiting.done(within=1.0)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert waiting.done(within=10.0) and waiting.status == 200, waiting.error
        restored(proxy, within=10.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_lease_that_runs_out_restores_haproxy_and_resume_says_so(proxy: Proxy) -> None:
    quiescer = HaproxyQuiescer()
    held = spec(proxy, timeout=2.0, lease=2.0)
    quiescer.hold(held)
    assert proxy.limits() != (GLOBAL_MAXCONN, MAXCONN)
    restored(proxy, within=15.0)
    with pytest.raises(QuiesceError, match="the lease ended before resume"):
        quiescer.resume(held)
    assert proxy.limits() == (GLOBAL_MAXCONN, MAXCONN)


def test_an_open_connection_fails_the_hold_and_resume_undoes_it(proxy: Proxy) -> None:
    idle = socket.create_connection(("127.0.0.1", proxy.port))
    try:
        time.sleep(0.2)
        quiescer = HaproxyQuiescer()
        held = spec(proxy, timeout=1.0)
        with pytest.raises(QuiesceError, match="connections still open") as caught:
            quiescer.hold(held)
        assert proxy.socket in str(caught.value) and "web has" in str(caught.value)
        quiescer.resume(held)
        assert proxy.limits() == (GLOBAL_MAXCONN, MAXCONN)
    finally:
        idle.close()


def test_errors_name_the_socket_and_the_frontend(proxy: Proxy, tmp_path: Path) -> None:
    quiescer = HaproxyQuiescer()
    with pytest.raises(QuiesceError) as caught:
        quiescer.hold(spec(proxy, frontends=["nope"]))
    assert str(caught.value) == (
        f"haproxy of tier web: HAProxy at {proxy.socket} has no frontend nope (it has: web)"
    )
    missing = str(tmp_path / "gone.sock")
    with pytest.raises(QuiesceError) as caught:
        quiescer.hold(spec(proxy, socket=missing))
    assert f"cannot reach HAProxy's runtime API at {missing}" in str(caught.value)
    assert proxy.limits() == (GLOBAL_MAXCONN, MAXCONN)


def test_the_config_file_gives_the_socket_the_frontends_and_the_pin(proxy: Proxy) -> None:
    quiescer = HaproxyQuiescer()
    held = QuiesceSpec("haproxy", "web", 5.0, 60.0, options={"conffile": str(proxy.conffile)})
    target = quiescer.target(held)
    assert (target.socket, target.frontends) == (proxy.socket, ("web",))
    assert target.pin == f"127.0.0.1:{proxy.port}"
    report = quiescer.hold(held)
    try:
        assert report.details["socket"] == proxy.socket
    finally:
        quiescer.resume(held)
    assert proxy.limits() == (GLOBAL_MAXCONN, MAXCONN)


def test_options_are_checked_before_anything_is_held() -> None:
    quiescer = HaproxyQuiescer()
    cases = {
        "give 'socket' (the runtime API) or 'conffile'": {"frontends": ["web"]},
        "give 'frontends' (their names) or 'conffile'": {"socket": "/run/haproxy.sock"},
        "option 'socket': 'localhost' is neither a socket path nor host:port": {
            "socket": "localhost",
            "frontends": "web",
        },
        "option 'frontends' must be a name or a list of names": {
            "socket": "/run/haproxy.sock",
            "frontends": ["a b"],
        },
        "option 'method' must be one of auto, frontend, global, not 'pause'": {
            "socket": "/run/haproxy.sock",
            "frontends": "web",
            "method": "pause",
        },
    }
    for message, options in cases.items():
        with pytest.raises(QuiesceError) as caught:
            quiescer.validate(QuiesceSpec("haproxy", "web", options=options))
        assert str(caught.value) == f"haproxy of tier web: {message}"


def test_the_config_reader_finds_the_admin_socket_frontends_and_binds() -> None:
    config = parse_config(
        textwrap.dedent(
            """
            global
                stats socket /run/haproxy/user.sock mode 660 level user
                stats socket ipv4@127.0.0.1:9999 level admin  # the API
            defaults
                mode http
            frontend www
                bind :80,:8080
            listen stats
                bind 127.0.0.1:8404
            frontend api   # second
                bind 10.0.0.1:443 ssl crt /etc/x.pem
            backend app
                server a 10.0.0.2:80
            """
        )
    )
    assert config.socket == "ipv4@127.0.0.1:9999"
    assert config.frontends == ("www", "api")
    assert config.binds["www"] == ("127.0.0.1:80", "127.0.0.1:8080")
    assert config.binds["stats"] == ("127.0.0.1:8404",)
    assert config.binds["api"] == ("10.0.0.1:443",)
