"""The files cache: reuse the parent snapshot's content for unchanged files.

A regular file whose size, mtime, ctime and inode number are those recorded
in the parent snapshot is not read again: its node takes the parent's
content (after checking that every chunk is still in the index). Both the
walk and the parent's tree are in canonical order, so the lookup is a merge
of two sorted streams: constant memory, whatever the size of the tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from haprotect.model.snapshot import Node, NodeType
from haprotect.repo.index import Index
from haprotect.repo.tree import sort_key


class FilesCache:
    def __init__(self, parent_nodes: Iterable[Node], index: Index) -> None:
        self._nodes: Iterator[Node] = iter(parent_nodes)
        self._index = index
        self._head: Node | None = None
        self._head_key: tuple[bytes, ...] = ()
        self._last: tuple[bytes, ...] = ()
        self._advance()

    def _advance(self) -> None:
        self._head = next(self._nodes, None)
        if self._head is not None:
            self._head_key = sort_key(self._head.path)

    def lookup(self, path: str) -> Node | None:
        """The parent's node at ``path``; paths must be asked for in canonical order."""
        key = sort_key(path)
        if key < self._last:
            return None
        self._last = key
        while self._head is not None and self._head_key < key:
            self._advance()
        if self._head is not None and self._head_key == key:
            return self._head
        return None

    def reuse(self, node: Node, parent: Node | None) -> Node | None:
        """``node`` with the parent's content if the file is unchanged, else None."""
        if (
            parent is None
            or node.type is not NodeType.FILE
            or parent.type is not NodeType.FILE
            or node.size != parent.size
            or node.mtime_ns != parent.mtime_ns
            or node.ctime_ns != parent.ctime_ns
            or node.inode != parent.inode
        ):
            return None
        index = self._index
        if not all(isinstance(e, int) or e in index for e in parent.content):
            return None
        return replace(node, content=parent.content)


class NoFilesCache(FilesCache):
    def __init__(self, index: Index) -> None:
        super().__init__((), index)
