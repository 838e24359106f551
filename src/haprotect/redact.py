"""Secrets found in cluster configurations never leave haprotect in clear.

Sources call :func:`redact_value` on every parameter they read, before it
reaches the model, so no output or file made from the model (discover, the
policy, explain, plans, set metadata in the repository, logs) can show one.

* A parameter whose name contains ``passw``, ``secret``, ``key`` or
  ``token`` (any case) has its whole value replaced.
* In any other value, the credentials it carries are replaced and the rest
  is kept (:func:`redact_text`): the password of a URL's ``user:password@``
  (the user stays), and the value of each ``name=value`` whose name is
  secret as above, in option strings (``username=svc,password=...``,
  ``password=...;``, ``--password=...``, ``PGPASSWORD=...``, a URL's query)
  and libpq connection strings (``host=db password='...'``).
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"
_SECRET_WORDS = r"passw|secret|key|token"
_SECRET_NAME = re.compile(_SECRET_WORDS, re.IGNORECASE)

# scheme://user:password@ -- the password ends where the URL's authority would.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:@/?#]*:)[^\s@/?#]*@", re.I)

# name=value with a secret name: the value is quoted ('...' or "...", with
# backslash escapes, as libpq writes them) or runs to a separator.
_SECRET_OPTION = re.compile(
    r"(?P<head>(?<![\w.-])[\w.-]*(?:" + _SECRET_WORDS + r")[\w.-]*\s*=\s*)"
    r"""(?:'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s,;&'"]+)""",
    re.IGNORECASE,
)


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact_value(name: str, value: str) -> str:
    """``value`` of the parameter ``name``: all of it redacted if the name is secret."""
    return REDACTED if is_secret(name) else redact_text(value)


def redact_text(text: str) -> str:
    """``text`` with the credentials inside it replaced by :data:`REDACTED`."""
    if "=" not in text and "@" not in text:
        return text
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    return _SECRET_OPTION.sub(lambda m: f"{m['head']}{REDACTED}", text)
