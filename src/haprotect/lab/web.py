"""The lab's web tier: a front page, a proxy to the application, file uploads.

- ``GET /``: a small page saying what the lab holds.
- ``/api/*``: forwarded to the application tier (``/api/orders`` becomes
  ``/orders``), whose address is read from the lab's state file.
- ``POST /uploads?name=NAME`` (raw body): stored in ``<lab>/shared/uploads``,
  the directory that stands for the cluster's shared HA filesystem. The
  reply comes after the file and its directory entry are on disk (written
  to a temporary name, fsynced, renamed, directory fsynced).
- ``GET /uploads`` lists the files, ``GET /uploads/NAME`` returns one.
- ``GET /health`` reports the tier and whether the application answers.

Run as ``python -m haprotect.lab.web --lab DIR``; its port is in the state.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import json
import os
import re
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from haprotect.lab.serving import JsonHandler, lab_dir_argument, serve
from haprotect.lab.state import LabState, lab_paths, load_state

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_PROXY_TIMEOUT = 30.0


class WebServer(ThreadingHTTPServer):
    """The web tier's HTTP server; knows the lab directory and where uploads go."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], lab_dir: Path) -> None:
        super().__init__(address, WebHandler)
        self.lab_dir = lab_dir
        state = load_state(lab_dir)
        self.uploads = lab_paths(lab_dir, state.volume if state else None).uploads


class WebHandler(JsonHandler):
    """The web tier's routes (see the module docstring)."""

    @property
    def web(self) -> WebServer:
        return cast(WebServer, self.server)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/api/"):
            self._proxy(url.path.removeprefix("/api"), url.query)
        elif url.path == "/health":
            app = self._app_health()
            self.send_json(200, {"status": "ok", "tier": "web", "application": app})
        elif url.path == "/uploads":
            self.send_json(200, {"uploads": self._uploads()})
        elif url.path.startswith("/uploads/"):
            self._download(url.path.removeprefix("/uploads/"))
        elif url.path in ("/", "/index.html"):
            self.send_bytes(200, self._page().encode(), "text/html; charset=utf-8")
        else:
            self.send_json(404, {"error": f"no such path {url.path}"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/api/"):
            self._proxy(url.path.removeprefix("/api"), url.query)
        elif url.path == "/uploads":
            name = parse_qs(url.query).get("name", [""])[0] or self.headers.get("X-Upload-Name", "")
            self._upload(name)
        else:
            self.send_json(404, {"error": f"no such path {url.path}"})

    def _state(self) -> LabState | None:
        try:
            return load_state(self.web.lab_dir)
        except Exception:
            return None

    def _proxy(self, path: str, query: str) -> None:
        state = self._state()
        if state is None:
            self.send_json(502, {"error": "the lab state file cannot be read"})
            return
        body = self.read_body() if self.command == "POST" else None
        headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
        conn = http.client.HTTPConnection("127.0.0.1", state.app_port, timeout=_PROXY_TIMEOUT)
        try:
            conn.request(self.command, path + (f"?{query}" if query else ""), body, headers)
            response = conn.getresponse()
            data = response.read()
            content_type = response.getheader("Content-Type", "application/octet-stream")
            self.send_bytes(response.status, data, content_type)
        except (OSError, http.client.HTTPException) as exc:
            self.send_json(502, {"error": f"application tier unavailable: {exc}"})
        finally:
            conn.close()

    def _app_health(self) -> dict[str, Any]:
        state = self._state()
        if state is None:
            return {"status": "unknown"}
        conn = http.client.HTTPConnection("127.0.0.1", state.app_port, timeout=5)
        try:
            conn.request("GET", "/health")
            response = conn.getresponse()
            return cast(dict[str, Any], json.loads(response.read()))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return {"status": "unavailable", "error": str(exc)}
        finally:
            conn.close()

    def _upload(self, name: str) -> None:
        if not _NAME.fullmatch(name):
            self.send_json(400, {"error": "name: 1-128 of A-Z a-z 0-9 . _ -, not starting with ."})
            return
        try:
            data = self.read_body()
        except ValueError as exc:
            self.send_json(413, {"error": str(exc)})
            return
        uploads = self.web.uploads
        uploads.mkdir(parents=True, exist_ok=True)
        tmp = uploads / f".{name}.{uuid.uuid4().hex}.part"
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, uploads / name)
            dir_fd = os.open(uploads, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self.send_json(507, {"error": f"cannot store {name}: {exc}"})
            return
        digest = hashlib.sha256(data).hexdigest()
        self.send_json(201, {"name": name, "size": len(data), "sha256": digest})

    def _uploads(self) -> list[dict[str, Any]]:
        try:
            entries = sorted(self.web.uploads.iterdir())
        except OSError:
            return []
        return [
            {"name": p.name, "size": p.stat().st_size}
            for p in entries
            if p.is_file() and not p.name.startswith(".")
        ]

    def _download(self, name: str) -> None:
        if not _NAME.fullmatch(name):
            self.send_json(400, {"error": "bad name"})
            return
        try:
            data = (self.web.uploads / name).read_bytes()
        except FileNotFoundError:
            self.send_json(404, {"error": f"no upload {name}"})
            return
        self.send_bytes(200, data, "application/octet-stream")

    def _page(self) -> str:
        state = self._state()
        app = self._app_health()
        uploads = self._uploads()
        primary = state.primary if state else "unknown"
        rows = [
            ("database primary", primary),
            ("database standby", state.standby_node.name if state else "unknown"),
            ("application tier", f"{app.get('status')}, database {app.get('database', '?')}"),
            ("orders buffered in the application", str(app.get("buffered", "?"))),
            ("uploads on the shared filesystem", str(len(uploads))),
        ]
        table = "\n".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
        )
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>haprotect lab shop</title>
<style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:1em}}</style>
</head><body>
<h1>haprotect lab shop</h1>
<table>
{table}
</table>
<p><a href="/api/orders">orders</a> · <a href="/uploads">uploads</a> ·
<a href="/health">health</a></p>
</body></html>
"""


def make_server(lab_dir: Path) -> WebServer:
    state = load_state(lab_dir)
    if state is None:
        raise SystemExit(f"{lab_dir}: no lab state file")
    return WebServer(("127.0.0.1", state.web_port), lab_dir)


def main() -> None:
    serve(make_server(lab_dir_argument("The haprotect lab's web tier.")))


if __name__ == "__main__":
    main()
