"""Which mounted filesystem holds a path: shared by the sources that infer data on mounts."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def holding(by_mount_point: Mapping[str, T], path: str) -> T | None:
    """The entry mounted deepest above ``path`` (or at it), if any.

    ``by_mount_point`` is keyed by normalised mount points (``posixpath.normpath``).
    """
    current = posixpath.normpath(path)
    while True:
        found = by_mount_point.get(current)
        if found is not None:
            return found
        parent = posixpath.dirname(current)
        if parent == current:
            return None
        current = parent
