"""Console sessions: a signed cookie naming the token that logged in, and the session's CSRF token.

The cookie holds the session's id, the token's name (none before login)
and a random CSRF token, signed with HMAC-SHA256 (itsdangerous) under the
console's key and stamped with the time it was made: a cookie whose
signature is wrong, or older than the session lifetime, is no session. The
token's secret is never in it. Logging out ends the session here as well
as in the browser: its id is kept as ended until the cookie would have
expired anyway (in this process's memory: a restart forgets it, which the
lifetime bounds).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from haprotect.errors import InputError

#: The cookie's name; its path is the console's, so the API never sees it.
COOKIE = "haprotect_console"
#: The length of a made key; a shorter kept one is refused.
KEY_BYTES = 32
#: The file in the service's state directory that keeps the key.
KEY_FILE = "console.key"


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: ``token`` None until a login succeeds."""

    sid: str
    csrf: str
    token: str | None = None


def new_session(token: str | None = None) -> Session:
    """A session with a fresh id and CSRF token (at login too: no session is carried across)."""
    return Session(secrets.token_urlsafe(18), secrets.token_urlsafe(32), token)


class Sessions:
    """Signs and reads session cookies, and remembers the sessions that logged out."""

    def __init__(self, key: bytes, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self._serializer = URLSafeTimedSerializer(
            key, salt="haprotect.console.session", signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._ended: dict[str, float] = {}
        self._lock = threading.Lock()

    def encode(self, session: Session) -> str:
        return self._serializer.dumps([session.sid, session.csrf, session.token])

    def decode(self, cookie: str | None) -> Session | None:
        """The session of a cookie; None when absent, forged, expired or logged out."""
        if not cookie:
            return None
        try:
            sid, csrf, token = self._serializer.loads(
                cookie, max_age=int(self.lifetime.total_seconds())
            )
        except (BadSignature, ValueError, TypeError):
            return None
        if not (isinstance(sid, str) and isinstance(csrf, str)):
            return None
        if token is not None and not isinstance(token, str):
            return None
        with self._lock:
            if sid in self._ended:
                return None
        return Session(sid, csrf, token)

    def end(self, session: Session) -> None:
        """Refuse this session's cookie from now on (until it would have expired)."""
        now = time.monotonic()
        with self._lock:
            self._ended = {sid: until for sid, until in self._ended.items() if until > now}
            self._ended[session.sid] = now + self.lifetime.total_seconds()


def load_key(path: Path) -> bytes:
    """The signing key kept in ``path``, made (readable by its owner alone) when missing.

    Kept, so that sessions outlive a restart of the service; deleting the
    file ends every session at the next restart.
    """
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as out:
            out.write(key)
    if len(key) < KEY_BYTES:
        raise InputError(
            f"{path}: the console's key is shorter than {KEY_BYTES} bytes",
            hint="delete the file: the service makes a new one (every session ends)",
        )
    return key
