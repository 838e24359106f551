"""Which chunk id of the target repository a source chunk has, without reading it.

Chunk ids are keyed (keyed BLAKE3 with each repository's own ``id_key``),
so the same bytes have one id in the source and another in the target, and
the target's id of a chunk can only be computed from its plaintext. Reading
every chunk of every snapshot from the source to learn that would make a
copy as costly as a first one each time; instead ids are taken from what
the target already holds:

* a **copied pair**: a source snapshot and its copy in the target have the
  same nodes in the same order, and the same content entries position by
  position (only the ids differ). Walked in step with the snapshot being
  copied (all three trees are in canonical order: a merge by path, no
  snapshot held in memory), the pair tells, for each file, the target id of
  each chunk the file had then (:class:`PairedIds`);
* the chunks copied during this run (:class:`RecentIds`, bounded).

Any other chunk is read from the source and hashed with the target's key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from haprotect.model.snapshot import Node, NodeType
from haprotect.repo.format.tree import sort_key

RECENT_MAX = 200_000
"""Chunk ids remembered from this run (about 150 bytes each): a chunk that recurs
further apart than this within a run is read again, not stored again."""


class PairedIds:
    """Source chunk id → target chunk id, from a copied pair, one file at a time.

    :meth:`of` is asked for paths in canonical order (those of the snapshot
    being copied) and walks both trees of the pair forward only.
    """

    def __init__(self, source: Iterator[Node], target: Iterator[Node]) -> None:
        self._pairs = zip(source, target, strict=False)
        self._head: tuple[Node, Node] | None = None
        self._done = False

    def of(self, path: str) -> dict[bytes, bytes]:
        """The chunk ids the pair's file at ``path`` maps (empty when it has none)."""
        want = sort_key(path)
        while not self._done:
            if self._head is None:
                self._head = next(self._pairs, None)
                if self._head is None:
                    self._done = True
                    break
            was, copy = self._head
            here = sort_key(was.path)
            if here > want:
                break
            self._head = None
            if here == want:
                return _mapped(was, copy)
        return {}


def _mapped(was: Node, copy: Node) -> dict[bytes, bytes]:
    """Position by position, when both records are the same file (else nothing)."""
    if (
        was.type is not NodeType.FILE
        or copy.path != was.path
        or copy.size != was.size
        or len(copy.content) != len(was.content)
    ):
        return {}
    return {
        s: t
        for s, t in zip(was.content, copy.content, strict=True)
        if isinstance(s, bytes) and isinstance(t, bytes)
    }


class RecentIds:
    """The ids of chunks copied (or found) during this run, oldest forgotten first."""

    def __init__(self, limit: int = RECENT_MAX) -> None:
        self._ids: dict[bytes, bytes | int] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, source_id: bytes) -> bytes | int | None:
        return self._ids.get(source_id)

    def add(self, source_id: bytes, target: bytes | int) -> None:
        with self._lock:
            self._ids[source_id] = target
            if len(self._ids) > self._limit:
                del self._ids[next(iter(self._ids))]


__all__ = ["RECENT_MAX", "PairedIds", "RecentIds"]
