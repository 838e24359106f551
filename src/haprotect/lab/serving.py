"""What the lab's two HTTP tiers share: JSON replies, bodies, a clean stop on SIGTERM."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

MAX_BODY = 64 * 1024 * 1024

log = logging.getLogger("haprotect.lab")


class BodyTooLarge(ValueError):
    """A request body over the limit :meth:`JsonHandler.read_body` was given."""


class JsonHandler(BaseHTTPRequestHandler):
    """The request handler both lab tiers build on: JSON replies and bounded bodies."""

    server_version = "haprotect-lab/1"

    def send_json(self, status: int, body: object) -> None:
        self.send_bytes(status, json.dumps(body).encode() + b"\n", "application/json")

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self, limit: int = MAX_BODY) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise BodyTooLarge(f"body of {length} bytes is over the limit of {limit}")
        return self.rfile.read(length) if length > 0 else b""

    def read_json(self) -> Any:
        return json.loads(self.read_body(1024 * 1024) or b"null")

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def lab_dir_argument(description: str) -> Path:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--lab", required=True, type=Path, help="the lab directory")
    lab: Path = parser.parse_args().lab
    return lab.resolve()


def serve(server: ThreadingHTTPServer, on_stop: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then run ``on_stop`` and return."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    log.info("listening on http://%s:%s", host, port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if on_stop is not None:
            on_stop()
        log.info("stopped")
