"""Notifications as JSON POSTs to a URL, retried with backoff.

Each notification is one POST of :func:`~.notification.payload`
(``Content-Type: application/json``). A connection error, a timeout, a 5xx,
408 or 429 answer is retried (:class:`~.retry.Backoff`: by default 4
attempts, waiting 1, 2 and 4 seconds); another 4xx, or a redirect (never
followed: the body would go where the config does not say), fails at once.

With a bearer token the request carries ``Authorization: Bearer <token>``;
with an HMAC secret, ``X-Haprotect-Timestamp: <Unix time>`` and
``X-Haprotect-Signature: sha256=<hex>``, the HMAC-SHA256 under the secret of
``<timestamp>.<body>``: a receiver recomputes it, compares in constant time
and refuses old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import httpx

from haprotect import __version__
from haprotect.service.notify.config import WebhookConfig
from haprotect.service.notify.notification import Notification, payload
from haprotect.service.notify.retry import Backoff, Retry, attempt
from haprotect.service.notify.target import DeliveryError, scrubbed

SIGNATURE_HEADER = "X-Haprotect-Signature"
TIMESTAMP_HEADER = "X-Haprotect-Timestamp"

_RETRIED = frozenset({408, 429})


def signature(key: str, timestamp: str, body: bytes) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookTarget:
    """POSTs each notification to the configured URL (see the module docstring)."""

    def __init__(
        self,
        config: WebhookConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = config.label()
        self.kinds = config.kinds
        self._config = config
        self._bearer = config.bearer()
        self._key = config.signing_key()
        self._secrets = tuple(
            s for s in (self._bearer, self._key, *config.headers.values()) if s is not None
        )
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff or Backoff(attempts=config.attempts)
        self._client = httpx.Client(timeout=config.timeout, follow_redirects=False)

    def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification), sort_keys=True).encode()
        try:
            attempt(lambda: self._post(body), self._backoff, self._sleep)
        except Retry as exc:
            raise DeliveryError(
                f"{self.name}: not delivered after {self._backoff.attempts} attempts, "
                f"the last: {self._safe(str(exc))}"
            ) from None

    def close(self) -> None:
        self._client.close()

    def _post(self, body: bytes) -> None:
        headers = {
            **self._config.headers,
            "Content-Type": "application/json",
            "User-Agent": f"haprotect/{__version__}",
        }
        if self._bearer is not None:
            headers["Authorization"] = f"Bearer {self._bearer}"
        if self._key is not None:
            stamp = str(int(self._clock()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = signature(self._key, stamp, body)
        try:
            answer = self._client.post(self._config.url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise Retry(f"{type(exc).__name__}: {exc}") from None
        status = answer.status_code
        if status >= 500 or status in _RETRIED:
            raise Retry(f"HTTP {status} {answer.reason_phrase}")
        if not 200 <= status < 300:
            raise DeliveryError(
                f"{self.name}: refused with HTTP {status} {answer.reason_phrase}"
                + (" (redirects are not followed)" if 300 <= status < 400 else "")
            )

    def _safe(self, text: str) -> str:
        return scrubbed(text, self._secrets)
