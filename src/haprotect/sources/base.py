"""The contract every cluster source fulfils.

A source turns what one cluster manager says into a :class:`Topology`. It is
chosen by the scheme of the source URL (``pacemaker://``,
``pacemaker+file:///etc/cib.xml``, ``file:///srv/topology.yaml``); a bare
path is read as a file by whichever source recognises its content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from haprotect.errors import UsageError
from haprotect.model.topology import Topology


@dataclass(frozen=True, slots=True)
class DiscoverOptions:
    """How a source may query its cluster.

    ``use_cli`` false forbids running the cluster manager's tools, so that the
    pure-Python reading is used even where the tools are installed.
    """

    use_cli: bool = True
    timeout_seconds: float = 60.0


class Source(Protocol):
    """The contract every cluster source meets (see the module docstring), built-in or plug-in."""

    @property
    def name(self) -> str: ...

    @property
    def schemes(self) -> tuple[str, ...]:
        """URL schemes this source answers to."""
        ...

    def applies_to(self, url: str) -> bool:
        """True when this source reads ``url`` (by scheme, or a file's content)."""
        ...

    def discover(self, url: str, options: DiscoverOptions) -> Topology: ...


def url_scheme(url: str) -> str:
    return urlsplit(url).scheme if "://" in url else ""


def url_path(url: str) -> Path:
    """The local path a file URL or bare path names.

    ``scheme:///abs/cib.xml`` is absolute; ``scheme://rel/cib.xml`` (no third
    slash) is taken relative to the working directory, as users type it.
    """
    if "://" not in url:
        return Path(url)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise UsageError(f"{url}: a file URL takes no ?query or #fragment")
    if parts.netloc in ("", "localhost"):
        return Path(unquote(parts.path))
    return Path(unquote(parts.netloc + parts.path))
