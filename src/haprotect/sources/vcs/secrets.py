"""Secrets in main.cf: redacted as they are read (see :mod:`haprotect.redact`).

Besides the project's secret names (any name containing ``passw``, ...),
VCS spells passwords ``Pword`` (the Oracle agent), ``pswd`` (Sybase's
``SApswd``) and keeps users' password hashes in ``UserNames`` (a user ->
hash association): those values are redacted too, the user names kept.
"""

from __future__ import annotations

import re

from haprotect.redact import REDACTED, is_secret, redact_text
from haprotect.sources.vcs.config import Value

_VCS_SECRET = re.compile(r"pword|pswd|passwd", re.IGNORECASE)
#: attributes whose association maps a user to a password hash
HASHES_BY_USER = frozenset({"UserNames"})


def is_vcs_secret(name: str) -> bool:
    return is_secret(name) or _VCS_SECRET.search(name) is not None


def redact_attribute(name: str, value: Value) -> Value:
    """``value`` of attribute ``name`` as it may be kept."""
    if name in HASHES_BY_USER:
        if isinstance(value, dict):
            return {user: REDACTED for user in value}
        return value if isinstance(value, tuple) else REDACTED
    if is_vcs_secret(name):
        if isinstance(value, dict):
            return {key: REDACTED for key in value}
        return tuple(REDACTED for _ in value) if isinstance(value, tuple) else REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, tuple):
        return tuple(redact_text(item) for item in value)
    return {key: redact_text(item) for key, item in value.items()}
