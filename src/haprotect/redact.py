"""Secrets found in cluster configurations never leave haprotect in clear.

A parameter whose name contains ``passw``, ``secret`` or ``key`` (any case)
has its value replaced wherever it is read, before it reaches the model.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"passw|secret|key", re.IGNORECASE)


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact_value(name: str, value: str) -> str:
    return REDACTED if is_secret(name) else value
