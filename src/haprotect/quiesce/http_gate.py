"""http-gate: hold a web tier's requests at its gate while the cut is taken.

The gate (:mod:`haprotect.quiesce.gate`, its own process in front of the
web tier) does the work; this quiescer drives its admin API with httpx:

- hold: ``POST /hold`` with a hold id chosen here, the spec's lease and
  its timeout as the drain timeout. It answers once the requests in flight
  have finished; new ones wait in the gate's queue.
- resume: ``POST /resume`` with the same id; the queue is replayed in order.
- :meth:`HttpGateQuiescer.renew` extends the lease of a long hold.

The hold id is chosen before the request is sent, so even when the answer
to ``/hold`` is lost, resume releases exactly this hold and no other. If
haprotect dies, the gate resumes by itself when the lease ends.

Options: ``admin_url`` (required, e.g. ``http://127.0.0.1:8079``),
``token`` or ``token_file`` (the admin API's bearer token, if it has one).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from haprotect.quiesce import options as opt
from haprotect.quiesce.base import HoldReport, QuiesceSpec, ResumeReport

log = logging.getLogger(__name__)

OPTIONS = ("admin_url", "token", "token_file")


class HttpGateQuiescer:
    """The ``http-gate`` quiescer; remembers the hold id it chose for each spec until resume."""

    name = "http-gate"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds: dict[str, str] = {}  #: spec key -> hold id

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        opt.known(spec, OPTIONS)
        url = opt.string(spec, "admin_url")
        if not url.startswith(("http://", "https://")):
            raise opt.fail(spec, f"option 'admin_url' must be an http(s) URL, not {url!r}")
        if spec.options.get("token") is not None and spec.options.get("token_file") is not None:
            raise opt.fail(spec, "give 'token' or 'token_file', not both")
        opt.optional_string(spec, "token")
        opt.optional_string(spec, "token_file")

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        self.validate(spec)
        hold_id = uuid.uuid4().hex
        with self._lock:
            if spec.key in self._holds:
                raise opt.fail(spec, "already held")
            self._holds[spec.key] = hold_id
        holder = f"haprotect pid {os.getpid()} on {socket.gethostname()}"
        body = {
            "id": hold_id,
            "holder": holder,
            "lease": spec.lease_seconds,
            "drain_timeout": spec.timeout_seconds,
        }
        answer = self._call(spec, "/hold", body, timeout=spec.timeout_seconds + 5.0)
        log.info("%s: held, %s requests queued", spec.label, answer.get("queued"))
        return HoldReport(
            time.time(),
            {
                "hold_id": hold_id,
                "queued": str(answer.get("queued", "")),
                "in_flight": str(answer.get("in_flight", "")),
                "drained_seconds": str(answer.get("drained_seconds", "")),
                "lease_seconds": f"{spec.lease_seconds:g}",
            },
        )

    def renew(self, spec: QuiesceSpec, lease: float | None = None) -> None:
        """Extend the lease of the current hold (to ``lease`` seconds from now)."""
        with self._lock:
            hold_id = self._holds.get(spec.key)
        if hold_id is None:
            raise opt.fail(spec, "not held, so there is no lease to renew")
        seconds = spec.lease_seconds if lease is None else lease
        self._call(spec, "/renew", {"id": hold_id, "lease": seconds}, timeout=spec.timeout_seconds)

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        with self._lock:
            hold_id = self._holds.pop(spec.key, None)
        if hold_id is None:
            return ResumeReport(time.time())
        answer = self._call(spec, "/resume", {"id": hold_id}, timeout=spec.timeout_seconds)
        if not answer.get("resumed"):
            reason = answer.get("reason", "not held")
            if str(reason).startswith("lease-expired"):
                raise opt.fail(
                    spec,
                    "the gate's lease ran out before resume and it resumed by itself; "
                    "requests went through while the tier was supposed to be held",
                )
            return ResumeReport(
                time.time(), {"hold_id": hold_id, "resumed": "false", "reason": str(reason)}
            )
        return ResumeReport(
            time.time(),
            {
                "hold_id": hold_id,
                "held_seconds": str(answer.get("held_seconds", "")),
                "replaying": str(answer.get("queued_at_resume", "")),
            },
        )

    def status(self, spec: QuiesceSpec) -> dict[str, Any]:
        """The gate's ``GET /status``."""
        return self._call(spec, "/status", None, timeout=spec.timeout_seconds)

    def _token(self, spec: QuiesceSpec) -> str | None:
        token = opt.optional_string(spec, "token")
        path = opt.optional_string(spec, "token_file")
        if path is not None:
            try:
                token = Path(path).read_text().strip()
            except OSError as exc:
                raise opt.fail(spec, f"cannot read the token file {path}: {exc.strerror}") from None
        return token

    def _call(
        self, spec: QuiesceSpec, path: str, body: dict[str, Any] | None, *, timeout: float
    ) -> dict[str, Any]:
        url = opt.string(spec, "admin_url").rstrip("/") + path
        token = self._token(spec)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        method = "GET" if body is None else "POST"
        try:
            with httpx.Client(timeout=timeout, trust_env=False) as client:
                response = client.request(method, url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise opt.fail(spec, f"{method} {url}: no answer within {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise opt.fail(spec, f"{method} {url}: {exc}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": response.text[:200]}
        if not isinstance(answer, dict):
            answer = {"error": str(answer)[:200]}
        if not response.is_success:
            raise opt.fail(
                spec, f"{method} {url}: {response.status_code} {answer.get('error', '')}".strip()
            )
        return answer
