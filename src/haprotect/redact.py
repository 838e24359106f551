"""Secrets found in cluster configurations never leave haprotect in clear.

Sources call :func:`redact_value` on every parameter they read, before it
reaches the model, so no output or file made from the model (discover, the
policy, explain, plans, set metadata in the repository, logs) can show one.

* A parameter whose name contains ``passw``, ``secret``, ``key``,
  ``token`` or ``credential``, or is or ends in the word ``pwd`` or
  ``pass`` (ODBC's ``PWD``, ``db_pass``; any case), has its whole value
  replaced.
* In any other value, the credentials it carries are replaced and the rest
  is kept (:func:`redact_text`): the password of a URL's ``user:password@``
  (the user stays), and the value of each ``name=value`` whose name is
  secret as above, in option strings (``username=svc,password=...``,
  ``password=...;``, ``--password=...``, ``PGPASSWORD=...``, a URL's query)
  and libpq connection strings (``host=db password='...'``).

Some values must stay real inside haprotect: a quiescer's options (an
``admin_url`` with ``user:password@``, a DSN) are what it connects with.
They are redacted where they are shown or written instead, through
:func:`redact_entry` (``to_plain`` of :mod:`haprotect.engine.events`, which
every JSON output of a plan, event or result goes through, and the policy
diff), and the messages and details quiescers report as they are recorded.

Repository and store URLs stay real too, to be opened with; every message,
event, plan and summary shows one through :func:`display_url`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(
    r"passw|secret|key|token|credential|(?:^|[\W_])(?:pwd|pass)(?:$|[\W_])", re.IGNORECASE
)
# ://user:password@ -- the password runs to the authority's last "@" (as URL
# parsers split it: a password may hold a raw "@"), never past its end.
_URL_PASSWORD = re.compile(r"(?P<head>://[^\s:@/?#]*+:)[^\s/?#]*@")
# A name followed by "=": its value is redacted when the name is secret.
_NAME_EQUALS = re.compile(r"(?<![\w.-])(?P<name>[\w.-]++)\s*+=\s*+")
# A value: quoted ('...' or "...", with backslash escapes, as libpq writes
# them; unterminated to the end) or running to a separator.
_VALUE = re.compile(r"""'(?:[^'\\]|\\.)*+'?|"(?:[^"\\]|\\.)*+"?|[^\s,;&'"]++""")


def is_secret(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def redact_value(name: str, value: str) -> str:
    """``value`` of the parameter ``name``: all of it redacted if the name is secret."""
    return REDACTED if is_secret(name) else redact_text(value)


def redact_entry(name: str, value: object) -> object:
    """``value``, found under ``name`` in plain data (options, details), as it may be shown.

    Strings as :func:`redact_value`; a number under a secret name is
    replaced too; a list's items keep ``name``, a mapping's take their keys.
    """
    if isinstance(value, str):
        return redact_value(name, value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return REDACTED if is_secret(name) else value
    if isinstance(value, list | tuple):
        return [redact_entry(name, item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): redact_entry(str(k), v) for k, v in value.items()}
    return value


def redact_text(text: str) -> str:
    """``text`` with the credentials inside it replaced by :data:`REDACTED`."""
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    if "=" not in text:
        return text
    out: list[str] = []
    done = 0
    for found in _NAME_EQUALS.finditer(text):
        if found.start() < done or not is_secret(found["name"]):
            continue
        value = _VALUE.match(text, found.end())
        if value is None:
            continue
        out += [text[done : found.end()], REDACTED]
        done = value.end()
    return "".join(out) + text[done:]


def display_url(url: str) -> str:
    """A repository or store URL as it may be shown: without the credentials it carries.

    Those of :func:`redact_text`, also when they are percent-encoded (an
    ``endpoint=`` URL inside an ``s3://`` URL's query): the URL is then shown
    decoded.
    """
    shown = redact_text(url)
    if "%" in shown:
        plain = unquote(shown)
        redacted = redact_text(plain)
        if redacted != plain:
            return redacted
    return shown
