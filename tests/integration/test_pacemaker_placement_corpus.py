"""The two placement readers agree over every CIB of the corpus.

For each ``<cib>`` with a ``<status>`` section under ``pacemaker/``, crm_mon
(``CIB_file=FILE crm_mon --one-shot --inactive --output-as=xml``) and the
pure-Python reading of the status section must name the same (resource,
node, role) triples. Where they differ, the file and resource must be listed
with a reason in ``tests/pacemaker_known_differences.tsv``, and every listed
difference must still occur, so the list stays honest.

Files crm_mon rejects are left out of the comparison (and counted); if such a
file is malformed XML, our reader must reject it too.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from haprotect.errors import ClusterConfigError, ComponentError
from haprotect.model.topology import Role
from haprotect.sources.pacemaker.crm_mon import run_crm_mon, state_from_crm_mon
from haprotect.sources.pacemaker.state import ClusterState
from haprotect.sources.pacemaker.status import state_from_status
from haprotect.sources.pacemaker.xml import parse_xml

KNOWN_DIFFERENCES = Path(__file__).resolve().parent.parent / "pacemaker_known_differences.tsv"
MIN_AGREEMENT = 0.95
Triple = tuple[str, str, str]


@dataclass
class Outcome:
    path: str
    in_scope: bool = True
    malformed: str | None = None
    rejected: str | None = None
    crm_mon: set[Triple] = field(default_factory=set)
    status: set[Triple] = field(default_factory=set)

    def differing_resources(self) -> set[str]:
        return {resource for resource, _, _ in self.crm_mon ^ self.status}


def triples(state: ClusterState) -> set[Triple]:
    return {(r, n, str(role)) for r, nodes in state.placement.items() for n, role in nodes.items()}


def compare(path: Path, corpus: Path) -> Outcome:
    outcome = Outcome(str(path.relative_to(corpus)))
    try:
        cib = parse_xml(path.read_bytes(), outcome.path)
    except ClusterConfigError as exc:
        outcome.malformed = exc.message
    else:
        if cib.tag != "cib" or cib.find("status") is None:
            outcome.in_scope = False
            return outcome
        outcome.status = triples(state_from_status(cib))
    try:
        output = run_crm_mon(path, timeout=60)
        outcome.crm_mon = triples(state_from_crm_mon(parse_xml(output, f"crm_mon on {path}")))
    except (ComponentError, ClusterConfigError) as exc:
        assert "\n" not in exc.message and exc.message.strip(), repr(exc.message)
        outcome.rejected = exc.message
    return outcome


def only(found: set[Triple], resource: str) -> list[Triple]:
    return sorted(t for t in found if t[0] == resource)


def known_differences() -> dict[tuple[str, str], str]:
    known: dict[tuple[str, str], str] = {}
    for number, line in enumerate(KNOWN_DIFFERENCES.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        columns = line.split("\t")
        assert len(columns) == 3 and all(c.strip() for c in columns), (
            f"{KNOWN_DIFFERENCES.name}:{number}: want 'file<TAB>resource<TAB>reason'"
        )
        if columns[0] != "file":  # the header
            known[(columns[0], columns[1])] = columns[2]
    return known


@pytest.mark.component("crm_mon")
def test_crm_mon_and_the_status_section_agree(crm_mon: str, corpus: Path) -> None:
    candidates = sorted(
        p for p in (corpus / "pacemaker").rglob("*.xml") if b"<cib" in p.read_bytes()[:4096]
    )
    workers = max(2, min(8, 2 * (os.cpu_count() or 1)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = [o for o in pool.map(lambda p: compare(p, corpus), candidates) if o.in_scope]
    assert len(outcomes) > 400, f"expected 400+ CIBs with a status section under {corpus}"

    for o in outcomes:
        if o.malformed is not None:
            assert o.rejected is not None, f"{o.path}: crm_mon read it, we did not: {o.malformed}"
    rejected = [o for o in outcomes if o.rejected is not None]
    compared = [o for o in outcomes if o.rejected is None]
    union = sum(len(o.crm_mon | o.status) for o in compared)
    agreed = sum(len(o.crm_mon & o.status) for o in compared)
    found = {(o.path, r): o for o in compared for r in o.differing_resources()}
    known = known_differences()

    print(f"\nplacement: {len(outcomes)} CIBs with a status section, {len(compared)} compared")
    print(f"  {agreed}/{union} placements agree ({agreed / max(union, 1):.2%})")
    print(f"  {len(rejected)} rejected by crm_mon and left out:")
    for o in rejected:
        print(f"    {o.path}: {'malformed, ' if o.malformed else ''}{o.rejected}")
    print(f"  {len(found)} known differences:")
    for (path, resource), reason in sorted(known.items()):
        print(f"    {path} {resource}: {reason}")

    unlisted = [
        f"{path} {resource}: crm_mon only {only(o.crm_mon - o.status, resource)}"
        f", status only {only(o.status - o.crm_mon, resource)}"
        for (path, resource), o in sorted(found.items())
        if (path, resource) not in known
    ]
    assert not unlisted, (
        "differences not in " + KNOWN_DIFFERENCES.name + ":\n" + "\n".join(unlisted)
    )
    stale = sorted(set(known) - set(found))
    assert not stale, f"listed in {KNOWN_DIFFERENCES.name} but no longer different: {stale}"
    assert agreed >= MIN_AGREEMENT * union, f"only {agreed}/{union} placements agree"


@pytest.mark.parametrize(
    ("expected", "cib"),
    [
        ("01-basic-output-xml.xml", "crm_mon.xml"),
        ("25-output-of-partially-active-resources-xml.xml", "crm_mon-partial.xml"),
        ("27-output-of-active-unmanaged-resource-on-offline-node-xml.xml", "crm_mon-unmanaged.xml"),
    ],
)
def test_status_reader_matches_pacemakers_own_expected_crm_mon_output(
    expected: str, cib: str, corpus: Path
) -> None:
    """Pacemaker's CLI regression suite pins crm_mon's output for these CIBs."""
    pacemaker = corpus / "pacemaker"
    want = state_from_crm_mon(
        parse_xml((pacemaker / "crm_mon-xml-output" / expected).read_bytes(), expected)
    )
    got = state_from_status(parse_xml((pacemaker / "cli" / cib).read_bytes(), cib))
    assert got.placement == want.placement
    assert got.nodes == want.nodes


@pytest.mark.parametrize(
    "name", ["crmmon.xml", "crmmon_pacemaker302.xml", "crmmon_pacemaker_future.xml"]
)
def test_legacy_crm_mon_documents_are_read(name: str, corpus: Path) -> None:
    """``<crm_mon version=...>`` output, as SAP HANA tooling collected it."""
    path = corpus / "pacemaker/other/trento-agent" / name
    state = state_from_crm_mon(parse_xml(path.read_bytes(), name))
    assert [n.name for n in state.nodes if n.online] == ["node01", "node02"]
    assert state.placement["rsc_SAPHana_PRD_HDB00"] == {
        "node01": Role.PROMOTED,
        "node02": Role.UNPROMOTED,
    }
