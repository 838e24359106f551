"""Cutting file data into chunks.

Two strategies, chosen per file from its size, its name and a sample of its
pages (so the same file is cut the same way in every backup):

content-defined
    FastCDC 2020 (``pyfastcdc``, which releases the GIL), seeded from the
    master key. Boundaries follow content, so an insertion or an append only
    changes the chunks around it. Chunks average about 1 MiB.
fixed blocks
    For page-structured files (databases, VM images): files of at least
    ``fixed_min_file`` bytes whose size is a multiple of ``page_size`` and
    that look paged (:func:`looks_paged`: by name, magic number, or page
    headers that agree). They are rewritten in place a page at a time, never
    shifted, so blocks aligned to the page grid make a changed 8 KiB page
    cost one 64 KiB block instead of a 1 MiB content-defined chunk, and
    cutting costs nothing. Other files (a log or an archive that happens to
    be a multiple of 4 KiB) are cut by content: large chunks compress better.
    See the reasoning in docs/design/repository-format.md.

A cut works on a buffer; unless the buffer ends the data (``final``), the
bytes after the last boundary are not a chunk yet and are carried into the
next buffer.
"""

from __future__ import annotations

import re

from pyfastcdc import FastCDC

from haprotect.repo.format.config import ChunkerParams

Cut = tuple[int, int]


# Names of files that are rewritten in place a page at a time: databases (SQLite,
# InnoDB, SQL Server, Oracle, LMDB, WiredTiger, Berkeley DB) and disk images.
_PAGED_SUFFIXES = (
    b".db",
    b".sqlite",
    b".sqlite3",
    b".ibd",
    b".mdf",
    b".ndf",
    b".ldf",
    b".dbf",
    b".mdb",
    b".wt",
    b".img",
    b".raw",
    b".qcow2",
    b".vmdk",
    b".vdi",
    b".vhd",
    b".vhdx",
)
# PostgreSQL relation segments (16384, 16384.1, 16384_fsm, 16384_vm.2), InnoDB's system tablespace
_PAGED_NAME = re.compile(rb"(?:\d+(?:_fsm|_vm|_init)?(?:\.\d+)?|ibdata\d+|undo_\d+)")
_PAGED_MAGIC = (b"SQLite format 3\x00", b"QFI\xfb")
# Pages are compared at offsets that are multiples of every usual page size
# (4, 8, 16 KiB); the first bytes of a page are its header.
SAMPLE_ALIGN = 16 * 1024
SAMPLE_BYTES = 32
SAMPLES = 8


def sample_offsets(size: int) -> list[int]:
    """Where to sample a file's pages: page 0 and evenly spread aligned offsets."""
    step = size // SAMPLES
    return sorted({i * step // SAMPLE_ALIGN * SAMPLE_ALIGN for i in range(SAMPLES)})


def looks_paged(name: bytes, samples: list[bytes]) -> bool:
    """True for a file that is probably page-structured (a database, a disk image).

    By its name, by a magic number, or by measure: the first bytes of its
    sampled pages (``samples``, read at :func:`sample_offsets`) agree in at
    least four places, as page headers do (a page-size field, a magic, a
    flags word, an owner id), while those of text or compressed data almost
    never do. A file whose samples are nearly all zeros (a sparse or
    preallocated image) counts as paged too.
    """
    if name.endswith(_PAGED_SUFFIXES) or _PAGED_NAME.fullmatch(name):
        return True
    if samples and samples[0].startswith(_PAGED_MAGIC):
        return True
    headers = [h for h in samples if h.count(0) != len(h)]
    if len(headers) < 3:
        return True
    first = headers[0]
    width = min(len(h) for h in headers)
    agree = sum(1 for i in range(width) if all(h[i] == first[i] for h in headers))
    return agree >= 4


def fixed_block_size(params: ChunkerParams, size: int, paged: bool = True) -> int | None:
    """The block size for a file of ``size`` bytes, if cut in fixed blocks, else None.

    Only files that may be page-structured (``paged``, see :func:`looks_paged`)
    of at least ``fixed_min_file`` bytes and a multiple of ``page_size`` are.
    """
    if not paged or size < params.fixed_min_file or size % params.page_size:
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
