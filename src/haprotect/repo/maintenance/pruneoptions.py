"""How a prune runs; apart from prune.py so that the CLI can show its defaults cheaply."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_REPACK_THRESHOLD = 0.2


@dataclass(frozen=True, slots=True)
class PruneOptions:
    """``repack_threshold``: repack a pack when at least this fraction of it is unused."""

    repack_threshold: float = DEFAULT_REPACK_THRESHOLD
    dry_run: bool = False
