"""The files cache: reuse the parent snapshot's content for unchanged files.

A regular file whose size, mtime, ctime and inode number are those recorded
in the parent snapshot is not read again: its node takes the parent's
content (after checking that every chunk is still in the index). Both the
walk and the parent's tree are in canonical order, so the lookup is a merge
of two sorted streams: constant memory, whatever the size of the tree.

The merge works on the parent's raw records (JSON lines), decoding only
those it needs. When nothing about a file changed, not even its owner, mode
or xattrs, the start of its new record (:func:`~haprotect.repo.format.tree.encode_head`)
equals the start of the parent's, and the parent's record is reused as it
is (:meth:`FilesCache.reuse_record`): no node is decoded, built or encoded.
Usually the file is also the parent's next record, so the merge does not even
compare paths: the parent's next record starts with the file's new head
(:meth:`FilesCache.matching_record`).
"""

from __future__ import annotations

import binascii
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import islice

from haprotect.model.snapshot import ContentEntry, Node, NodeType
from haprotect.repo.format.index import Index
from haprotect.repo.format.tree import NodeStream, decode_node, encode_node, record_key, sort_key

_CONTENT = b',"content":['
_XATTRS = b',"xattrs":['
_END = b"}\n"
# what may follow a file's head in a record it can be reused from (reuse_record, tail=None)
_TAIL = re.compile(rb'(?:,"content":\[([^\]:]*)\])?(?:,"xattrs":\[.*\])?\}\n')
_CHUNK_ID = re.compile(rb'"([0-9a-f]{64})"')


class FilesCache:
    """The parent snapshot's file records, looked up in walk order.

    Consumes the parent's nodes as one sorted stream, so a backup asks about
    each file once, in canonical order.
    """

    def __init__(self, parent_nodes: Iterable[Node], index: Index) -> None:
        self._records: Iterator[bytes] = (
            parent_nodes.records()
            if isinstance(parent_nodes, NodeStream)
            else map(encode_node, parent_nodes)
        )
        self._index = index
        self._head: bytes | None = None
        self._head_key: tuple[bytes, ...] | None = None
        self._ahead: deque[bytes] = deque()
        """Records after the head already taken from the stream (by :meth:`unchanged_run`)."""
        self._advance()

    def _advance(self) -> None:
        self._head = self._ahead.popleft() if self._ahead else next(self._records, None)
        self._head_key = None

    @property
    def exhausted(self) -> bool:
        """No parent's record is left (or there was no parent): every lookup finds nothing."""
        return self._head is None

    def matching_record(self, head: bytes) -> bytes | None:
        """The parent's next record if it starts with ``head``, the start of a file's new record.

        The usual case of a backup after another: the file is the parent's
        next node, and its path, type, owner, mode and stat up to its ctime
        are as recorded. Else None; then :meth:`lookup_record` finds the
        parent's record of that path, if any.
        """
        record = self._head
        if record is not None and record.startswith(head):
            self._advance()
            return record
        return None

    def unchanged_run(self, heads: Sequence[bytes]) -> list[bytes]:
        """The parent's next records for unchanged files, as many as match ``heads`` in a row.

        ``heads`` are the heads of files whose xattrs the walk did not read:
        each record is taken when :meth:`reuse_record` would take it (with
        ``tail=None``), checked for a whole run at once: the heads with one
        ``startswith`` each, what follows them with one regular expression,
        and all their chunks against the index together. The usual backup
        after another is a few such runs per directory. The records taken
        are passed; the first that does not match is left for
        :meth:`matching_record` or :meth:`lookup_record`.
        """
        first = self._head
        if first is None or not heads:
            return []
        more = len(heads) - 1 - len(self._ahead)
        if more > 0:
            self._ahead.extend(islice(self._records, more))
        records = [first, *islice(self._ahead, len(heads) - 1)]
        starts = list(map(bytes.startswith, records, heads))
        n = starts.index(False) if False in starts else len(starts)
        tails = list(map(_TAIL.fullmatch, records[:n], map(len, heads[:n])))
        if None in tails:
            n = tails.index(None)
        if not n:
            return []
        contents = b",".join([m[1] for m in tails[:n] if m is not None and m[1]])
        if contents:
            ids = _CHUNK_ID.findall(contents)
            if contents.count(b'"') != 2 * len(ids) or not self._index.has_all(
                map(binascii.unhexlify, ids)
            ):
                return []  # the records one by one, to find which
        if n > 1:
            self._ahead = deque(islice(self._ahead, n - 1, None))
        self._advance()
        return records[:n]

    def lookup_record(self, key: tuple[bytes, ...]) -> bytes | None:
        """The parent's record at ``key`` (a sort key); keys must come in canonical order.

        A key that comes out of order finds nothing: the merge has gone past it.
        """
        while self._head is not None:
            head_key = self._head_key
            if head_key is None:
                head_key = self._head_key = record_key(self._head)
            if head_key == key:
                record = self._head
                self._advance()
                return record
            if head_key > key:
                return None
            self._advance()
        return None

    def lookup(self, path: str) -> Node | None:
        """The parent's node at ``path``; paths must be asked for in canonical order."""
        record = self.lookup_record(sort_key(path))
        return None if record is None else decode_node(record)

    def reuse_record(self, record: bytes, head: bytes, tail: bytes | None) -> bool:
        """True if ``record`` is ``head``, then only content, then ``tail``, all of it indexed.

        ``head`` is the new record up to its ctime, ``tail`` its xattrs and end:
        then nothing but the content differs, and the parent's record is the
        new one. ``tail=None`` accepts the parent's xattrs, whatever they are
        (the walk did not read them: a file's ctime changes with its xattrs).
        """
        if len(record) < len(head) or not record.startswith(head):
            return False
        if tail is None:
            rest = record[len(head) :]
            middle = b""
            if rest.startswith(_CONTENT):
                end = rest.find(b"]") + 1
                if not end:
                    return False
                middle, rest = rest[:end], rest[end:]
            if rest != _END and not (rest.startswith(_XATTRS) and rest.endswith(b"]" + _END)):
                return False
        else:
            if len(record) < len(head) + len(tail) or not record.endswith(tail):
                return False
            middle = record[len(head) : len(record) - len(tail)]
        if not middle:
            return True
        if not middle.startswith(_CONTENT) or not middle.endswith(b"]") or middle.count(b":") != 1:
            return False
        index = self._index
        try:
            for item in middle[len(_CONTENT) : -1].split(b","):
                if item[:1] == b'"' and binascii.unhexlify(item[1:-1]) not in index:
                    return False
        except binascii.Error:
            return False
        return True

    def reuse_content(
        self, st: os.stat_result, parent: Node | None
    ) -> tuple[ContentEntry, ...] | None:
        """The parent's content for the regular file ``st`` if it is unchanged, else None."""
        if (
            parent is None
            or parent.type is not NodeType.FILE
            or st.st_size != parent.size
            or st.st_mtime_ns != parent.mtime_ns
            or st.st_ctime_ns != parent.ctime_ns
            or st.st_ino != parent.inode
        ):
            return None
        index = self._index
        if not all(isinstance(e, int) or e in index for e in parent.content):
            return None
        return parent.content

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
    """The files cache of a backup without a parent: every file is read."""

    def __init__(self, index: Index) -> None:
        super().__init__((), index)
