"""A tree read past lost chunks keeps every record that lies wholly in a readable one."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from haprotect.model.snapshot import Node, NodeType
from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.tree import LostChunk, decode_stream, encode_node


def _nodes(count: int) -> list[Node]:
    return [
        Node(
            path=f"/data/dir{n // 10:03d}/file{n:04d}-\u00e9\u00e8",
            type=NodeType.FILE,
            mode=0o644,
            mtime_ns=n,
            ctime_ns=n,
            size=n,
            content=(bytes([n % 256]) * 32,),
        )
        for n in range(count)
    ]


def _cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in pairwise(edges)]


def _survivors(records: list[bytes], chunks: list[bytes], lost: set[int]) -> list[str]:
    """Paths of the records no byte of which lies in a lost chunk (worked out by offsets)."""
    spans, at = [], 0
    for chunk in chunks:
        spans.append((at, at + len(chunk)))
        at += len(chunk)
    out, at = [], 0
    for record, node in zip(records, _nodes(len(records)), strict=True):
        start, end = at, at + len(record)
        at = end
        if not any(spans[i][0] < end and start < spans[i][1] for i in lost):
            out.append(node.path)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_records_outside_lost_chunks_survive(seed: int) -> None:
    rng = random.Random(seed)
    nodes = _nodes(200)
    records = [encode_node(n) for n in nodes]
    stream = b"".join(records)
    cuts = sorted(rng.sample(range(1, len(stream)), 25))
    chunks = _cut(stream, cuts)
    lost = set(rng.sample(range(len(chunks)), 3))
    fed: list[bytes | LostChunk] = [
        LostChunk(f"{i:064x}", "does not match its id") if i in lost else c
        for i, c in enumerate(chunks)
    ]
    nodes_read = decode_stream(fed, lenient=True)
    paths = [n.path for n in nodes_read]
    assert paths == _survivors(records, chunks, lost)
    assert nodes_read.gaps is not None and 1 <= len(nodes_read.gaps) <= 3
    for gap in nodes_read.gaps:
        assert gap.after is None or gap.after in paths
        assert gap.before is None or gap.before in paths
        assert "is lost (does not match its id)" in gap.describe()


def test_a_lost_chunk_on_record_boundaries_costs_only_its_records() -> None:
    records = [encode_node(n) for n in _nodes(9)]
    chunks = [b"".join(records[0:3]), b"".join(records[3:6]), b"".join(records[6:9])]
    stream = decode_stream([chunks[0], LostChunk("ab" * 32, "missing"), chunks[2]], lenient=True)
    paths = [n.path for n in stream]
    expected = [n.path for n in _nodes(9)]
    assert paths == expected[0:3] + expected[6:9]
    assert stream.gaps is not None
    (gap,) = stream.gaps
    assert (gap.after, gap.before) == (expected[2], expected[6])


def test_without_lenience_a_lost_chunk_raises() -> None:
    records = [encode_node(n) for n in _nodes(3)]
    with pytest.raises(IntegrityError, match="tree chunk abababab"):
        list(decode_stream([records[0], LostChunk("ab" * 32, "missing"), records[2]]))
