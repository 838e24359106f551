"""What the ``haproxy`` quiescer reads from an HAProxy configuration file.

Only two things: the runtime API's address (the ``stats socket`` of the
``global`` section, the first one with ``level admin``, else the first) and
the names of the ``frontend`` sections (``listen`` sections are held only
when named), with their ``bind`` addresses. Lines are split as HAProxy
splits them for these keywords (words separated by blanks, ``#`` starts a
comment); quoting, environment variables and conditional blocks are not
interpreted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "peers", "resolvers",
            "userlist", "program", "http-errors", "ring", "cache", "mailers")  # fmt: skip


class ConfigError(Exception):
    """The configuration file cannot be read or says nothing usable (one line)."""


@dataclass(frozen=True, slots=True)
class HaproxyConfig:
    """The parts of an HAProxy configuration the quiescer needs."""

    path: str
    socket: str | None  #: the runtime API address, as :mod:`haproxy_api` takes it
    frontends: tuple[str, ...]
    binds: dict[str, tuple[str, ...]]  #: frontend (or listen section) -> its bind addresses


def read_config(path: str) -> HaproxyConfig:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_config(text, path)


def parse_config(text: str, path: str = "haproxy.cfg") -> HaproxyConfig:
    section = ""
    sockets: list[tuple[str, bool]] = []
    frontends: list[str] = []
    binds: dict[str, list[str]] = {}
    proxy = ""
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] in SECTIONS:
            section = words[0]
            proxy = words[1] if len(words) > 1 and section in ("frontend", "listen") else ""
            if section == "frontend" and proxy:
                frontends.append(proxy)
            continue
        if proxy and words[0] == "bind" and len(words) > 1:
            binds.setdefault(proxy, []).extend(_address(a) for a in words[1].split(","))
        if section == "global" and words[:2] == ["stats", "socket"] and len(words) > 2:
            admin = any(a == "level" and b == "admin" for a, b in itertools.pairwise(words))
            sockets.append((_address(words[2]), admin))
    admin_sockets = [address for address, admin in sockets if admin]
    chosen = admin_sockets or [address for address, _ in sockets]
    found = {name: tuple(addresses) for name, addresses in binds.items()}
    return HaproxyConfig(path, chosen[0] if chosen else None, tuple(frontends), found)


def _address(word: str) -> str:
    """A bind address as the quiescer connects to it: ``*:9999`` and ``:9999`` on loopback."""
    bare = word.removeprefix("ipv4@")
    if bare.startswith(("*:", ":")):
        return "127.0.0.1:" + bare.rpartition(":")[2]
    return word
