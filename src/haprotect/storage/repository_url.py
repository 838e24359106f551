"""Repository URLs a policy or a command may name: a store the storage layer opens, not a device.

It lives with the stores, not with the policies, so that a repository command
checks its URL without loading the policy package (pydantic, YAML).

The scheme must be one a storage backend is registered for (``file``,
``s3``, ``memory`` and those of plug-ins). A local repository is a
directory: a path under ``/dev``, ``/proc`` or ``/sys``, or one that is
(or leads by symbolic links to) a device, a FIFO, a socket or a file, is
refused, since backing up there writes nowhere or somewhere it must not.
A path that does not exist yet is fine: ``repo init`` makes it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from haprotect.errors import UsageError
from haprotect.redact import display_url
from haprotect.storage import backend_for, url_scheme

#: Pseudo file systems a repository can never live in.
SPECIAL_ROOTS = (Path("/dev"), Path("/proc"), Path("/sys"))

_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISREG, "a file"),
)


def check_repository(url: str) -> None:
    """Raise ``ValueError`` (one line) if ``url`` names no store a backup may write to."""
    try:
        backend_for(url)
    except UsageError:
        raise ValueError(
            f"repository {display_url(url)!r}: unknown scheme {url_scheme(url)}:// "
            f"(known: {', '.join(_known_schemes())})"
        ) from None
    if url_scheme(url) == "file":
        _check_directory(url)


def _known_schemes() -> list[str]:
    from haprotect.storage import backends

    return [f"{name}://" for name in sorted(backends.names())]


def _check_directory(url: str) -> None:
    from haprotect.storage.local import path_from_url

    try:
        path = path_from_url(url)
    except UsageError as exc:
        raise ValueError(f"repository {exc.message}") from None
    real = Path(os.path.realpath(path))
    for root in SPECIAL_ROOTS:
        if real == root or root in real.parents:
            shown = str(path) if real == path else f"{path} ({real})"
            raise ValueError(
                f"repository {display_url(url)!r}: {shown} is under {root}, "
                "not a directory to write to"
            )
    try:
        mode = real.stat().st_mode
    except OSError:
        return
    for test, kind in _KINDS:
        if test(mode):
            raise ValueError(f"repository {display_url(url)!r}: {real} is {kind}, not a directory")
