"""app-flush: have an application write what it holds in memory to the tier below.

An application with a write-behind buffer (the lab's orders API) has
acknowledged data that exists only in its memory. Held below a gate that
stops new requests, one flush empties the buffer into the database, so the
database cut holds everything acknowledged. Either:

- ``url``: an HTTP admin endpoint (``POST`` by default, the lab's
  ``/admin/flush``), success is a 2xx answer; or
- ``command``: an argument list (never a shell string), success is exit 0.

If the answer (or the command's last output line) is a JSON object, its
numbers ``flushed``, ``rows``, ``bytes`` and ``buffered`` go into the
report; ``require_empty: true`` makes a flush that leaves ``buffered`` above
0 a failure. Nothing stays held, so resume has nothing to undo.

Options: ``url`` or ``command``; ``method`` (default POST); ``headers`` (a
mapping); ``require_empty`` (default false).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

from haprotect.errors import QuiesceError
from haprotect.quiesce import options as opt
from haprotect.quiesce.base import HoldReport, QuiesceSpec, ResumeReport
from haprotect.quiesce.run import run_argv

log = logging.getLogger(__name__)

OPTIONS = ("url", "command", "method", "headers", "require_empty")
COUNTS = ("flushed", "rows", "bytes", "buffered")


def _headers(spec: QuiesceSpec) -> dict[str, str]:
    headers = spec.options.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise opt.fail(spec, "option 'headers' must map names to strings")
    return dict(headers)


def counts(answer: object) -> dict[str, str]:
    """The flush counters an answer reports (integers only)."""
    if not isinstance(answer, dict):
        return {}
    return {
        k: str(answer[k])
        for k in COUNTS
        if isinstance(answer.get(k), int) and not isinstance(answer.get(k), bool)
    }


class AppFlushQuiescer:
    """The ``app-flush`` quiescer: one flush at hold, nothing to undo at resume."""

    name = "app-flush"

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        opt.known(spec, OPTIONS)
        url, command = opt.optional_string(spec, "url"), opt.argv(spec, "command")
        if (url is None) == (command is None):
            raise opt.fail(spec, "give exactly one of 'url' (an admin endpoint) or 'command'")
        if url is not None and not url.startswith(("http://", "https://")):
            raise opt.fail(spec, f"option 'url' must be an http(s) URL, not {url!r}")
        opt.choice(spec, "method", ("POST", "PUT", "GET"), "POST")
        _headers(spec)
        opt.boolean(spec, "require_empty", False)

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        self.validate(spec)
        started = time.monotonic()
        url = opt.optional_string(spec, "url")
        if url is not None:
            details = self._post(spec, url)
        else:
            command = opt.argv(spec, "command")
            assert command is not None
            details = self._command(spec, command)
        details["flush_seconds"] = f"{time.monotonic() - started:.3f}"
        if opt.boolean(spec, "require_empty", False) and details.get("buffered", "0") != "0":
            raise opt.fail(spec, f"{details['buffered']} items still buffered after the flush")
        log.info("%s: flushed (%s)", spec.label, details)
        return HoldReport(time.time(), details)

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        return ResumeReport(time.time())

    def _post(self, spec: QuiesceSpec, url: str) -> dict[str, str]:
        method = opt.choice(spec, "method", ("POST", "PUT", "GET"), "POST")
        try:
            with httpx.Client(timeout=spec.timeout_seconds, trust_env=False) as client:
                response = client.request(
                    method,
                    url,
                    headers=_headers(spec),
                    content=b"{}" if method != "GET" else None,
                )
        except httpx.TimeoutException:
            raise opt.fail(
                spec, f"{method} {url} got no answer within {spec.timeout_seconds:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise opt.fail(spec, f"{method} {url}: {exc}") from None
        answer: Any
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not response.is_success:
            said = answer.get("error") if isinstance(answer, dict) else response.text[:200]
            raise opt.fail(spec, f"{method} {url}: {response.status_code} {said}".strip())
        return {"endpoint": url, "status": str(response.status_code), **counts(answer)}

    def _command(self, spec: QuiesceSpec, command: list[str]) -> dict[str, str]:
        try:
            done = run_argv(command, spec.timeout_seconds)
        except OSError as exc:
            raise QuiesceError(
                f"{spec.label}: cannot run {command[0]}: {exc.strerror or exc}"
            ) from None
        if not done.ok:
            raise opt.fail(spec, f"flush command {done.describe(spec.timeout_seconds)}")
        try:
            answer = json.loads(done.last_line) if done.last_line.startswith("{") else None
        except ValueError:
            answer = None
        return {"command": command[0], "output": done.output, **counts(answer)}
