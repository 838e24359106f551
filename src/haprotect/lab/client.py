"""A tiny HTTP client for the lab's own loopback servers (never through a proxy)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HttpFailure(Exception):
    """No answer, or an answer that is not a success."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def request(
    url: str,
    *,
    method: str = "GET",
    data: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """(status, body) of a 2xx answer; HttpFailure for anything else."""
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with _OPENER.open(req, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace").strip()
        raise HttpFailure(f"{method} {url}: {exc.code} {body[:200]}", exc.code) from None
    except (OSError, ValueError) as exc:
        raise HttpFailure(f"{method} {url}: {exc}") from None


def get_json(url: str, timeout: float = 10.0) -> Any:
    return json.loads(request(url, timeout=timeout)[1])


def post_json(url: str, body: object, timeout: float = 10.0) -> Any:
    return json.loads(
        request(url, method="POST", data=json.dumps(body).encode(), timeout=timeout)[1]
    )
