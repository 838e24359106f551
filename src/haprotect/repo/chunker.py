"""Cutting file data into chunks.

Two strategies, chosen per file from its size alone (so the same file is cut
the same way in every backup):

content-defined
    FastCDC 2020 (``pyfastcdc``, which releases the GIL), seeded from the
    master key. Boundaries follow content, so an insertion or an append only
    changes the chunks around it. Chunks average about 1 MiB.
fixed blocks
    For page-structured files (databases, VM images): files of at least
    ``fixed_min_file`` bytes whose size is a multiple of ``page_size``. They
    are rewritten in place a page at a time, never shifted, so blocks aligned
    to the page grid make a changed 8 KiB page cost one 64 KiB block instead
    of a 1 MiB content-defined chunk, and cutting costs nothing. See the
    reasoning in docs/design/repository-format.md.

A cut works on a buffer; unless the buffer ends the data (``final``), the
bytes after the last boundary are not a chunk yet and are carried into the
next buffer.
"""

from __future__ import annotations

from pyfastcdc import FastCDC

from haprotect.repo.config import ChunkerParams

Cut = tuple[int, int]


def fixed_block_size(params: ChunkerParams, size: int) -> int | None:
    """The block size for a page-structured file of ``size`` bytes, else None."""
    if size < params.fixed_min_file or size % params.page_size:
        return None
    block = params.fixed_block
    while size > block * params.max_blocks and block < params.max_size:
        block *= 2
    return block


class Chunker:
    """Cuts buffers of one file at a time; not for concurrent use."""

    def __init__(self, params: ChunkerParams, seed: int) -> None:
        self._params = params
        self._cdc = FastCDC(
            params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=seed
        )

    @property
    def max_size(self) -> int:
        return self._params.max_size

    def cut(self, buf: memoryview, *, final: bool, block: int | None) -> tuple[list[Cut], int]:
        """Boundaries ``(offset, length)`` in ``buf`` and how many bytes they cover."""
        size = len(buf)
        if block is not None:
            whole = size if final else size - size % block
            return [(off, min(block, whole - off)) for off in range(0, whole, block)], whole
        cuts = [(c.offset, c.length) for c in self._cdc.cut_buf(buf)]
        if not final and cuts:
            cuts.pop()
        used = cuts[-1][0] + cuts[-1][1] if cuts else 0
        return cuts, used


class StreamChunker:
    """Cuts a growing byte stream (the tree of a snapshot) into content-defined chunks."""

    def __init__(self, params: ChunkerParams, seed: int) -> None:
        self._cdc = FastCDC(
            params.tree_avg_size,
            min_size=params.tree_min_size,
            max_size=params.tree_max_size,
            seed=seed,
        )
        self._flush_at = 4 * params.tree_max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Append ``data``; return the chunks that are complete."""
        self._buf += data
        if len(self._buf) < self._flush_at:
            return []
        return self._take(final=False)

    def finish(self) -> list[bytes]:
        return self._take(final=True) if self._buf else []

    def _take(self, *, final: bool) -> list[bytes]:
        view = memoryview(self._buf)
        chunks = [bytes(c.data) for c in self._cdc.cut_buf(view)]
        view.release()
        if not final:
            chunks.pop()
        used = sum(len(c) for c in chunks)
        del self._buf[:used]
        return chunks
