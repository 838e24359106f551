"""Mutated main.cf text never raises anything but the project's one-line errors.

Seeds are the fixture and the corpus's files (when the corpus is there);
each example applies a few edits (delete, duplicate or move a span, insert a
piece of the grammar or a random character) and runs the whole reading:
parse, join with a state parsed from a mutated ``hastatus -sum``, build the
topology and render it as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import FIXTURES, corpus_dir

from haprotect.errors import HaprotectError
from haprotect.model.topology import Cluster, Topology
from haprotect.model.topology_json import topology_to_json
from haprotect.sources.vcs.parser import parse_main_cf
from haprotect.sources.vcs.source import build_cluster
from haprotect.sources.vcs.status import read_state

ERP = FIXTURES / "vcs" / "erp"


def _seeds() -> list[str]:
    seeds = [(ERP / name).read_text() for name in ("main.cf", "types.cf", "vvrtypes.cf")]
    corpus = corpus_dir()
    if corpus is not None:
        seeds += [p.read_text() for p in sorted((corpus / "vcs").glob("*.cf"))]
    return seeds


SEEDS = _seeds()
STATE = (ERP / "main.cf.hastatus").read_text() + (ERP / "main.cf.hares").read_text()
PIECES = [
    "(", ")", "{", "}", "=", ",", "@", "[", "]", '"', "//", "/*", "*/", "\n", " ",
    "group", "requires", "requires group erp_db online local firm", "include", 'include "x.cf"',
    "type", "static", "Mount", "Parallel = 1", "SystemList = { erp1 = 0, erp2 = 1 }",
    "Enabled @erp2 = 0", "Critical = 0", "BlockDevice = \"/dev/vx/dsk/oradg/v\"",
    "RvgResourceName = ora_rvg", "offline local", "global soft", "\\", "\x00", "é",
]  # fmt: skip

edit = st.tuples(
    st.sampled_from(["delete", "duplicate", "insert", "char", "move"]),
    st.floats(0, 1),
    st.integers(0, 60),
    st.sampled_from(PIECES),
    st.characters(),
)


def mutate(text: str, edits: list[tuple[str, float, int, str, str]]) -> str:
    for op, where, length, piece, char in edits:
        pos = int(where * len(text))
        if op == "delete":
            text = text[:pos] + text[pos + length :]
        elif op == "duplicate":
            text = text[:pos] + text[pos : pos + length] + text[pos:]
        elif op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "char":
            text = text[:pos] + char + text[pos + 1 :]
        else:
            span = text[pos : pos + length]
            rest = text[:pos] + text[pos + length :]
            at = (pos * 7 + length) % (len(rest) + 1)
            text = rest[:at] + span + rest[at:]
    return text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    edits=st.lists(edit, min_size=1, max_size=6),
    state_edits=st.lists(edit, max_size=3),
)
def test_mutated_main_cf_is_read_or_refused_in_one_line(
    seed: int, edits: list[tuple[str, float, int, str, str]],
    state_edits: list[tuple[str, float, int, str, str]],
) -> None:  # fmt: skip
    text = mutate(SEEDS[seed], edits)
    try:
        config = parse_main_cf(text, "fuzz/main.cf")
        cluster = build_cluster(config, read_state(mutate(STATE, state_edits)), "fuzz")
        json.dumps(topology_to_json(Topology((cluster,))))
        check_invariants(cluster)
    except HaprotectError as exc:
        assert exc.message and "\n" not in exc.message and "\r" not in exc.message
        assert exc.message.startswith("fuzz/main.cf:")


def check_invariants(cluster: Cluster) -> None:
    """What every topology holds: references resolve, tiers come after what they need."""
    resources = {r.id for r in cluster.resources}
    datasets = {d.id for d in cluster.datasets}
    nodes = {n.name for n in cluster.nodes}
    for dataset in cluster.datasets:
        assert dataset.resource in resources
        assert dataset.backing is None or dataset.backing in datasets - {dataset.id}
        assert {dataset.primary, *dataset.standbys} - {None} <= nodes
        assert dataset.primary not in dataset.standbys
    for app in cluster.applications:
        placed: set[str] = set()
        for tier in app.tiers:
            assert set(tier.resources) <= resources and set(tier.datasets) <= datasets
            assert set(tier.depends_on) <= placed
            placed.add(tier.name)
    for dep in cluster.dependencies:
        assert {dep.source, dep.target} <= resources


def test_the_seeds_themselves_are_read() -> None:
    for text in SEEDS:
        check_invariants(build_cluster(parse_main_cf(text, "seed.cf"), read_state(STATE), "s"))
    assert Path(ERP / "main.cf").is_file()
