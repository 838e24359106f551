"""The Pacemaker source over every CIB of the shared corpus.

Each file is either discovered or rejected with one line naming the file;
nothing else (a traceback, an empty message) is acceptable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import corpus_dir

from haprotect.errors import HaprotectError
from haprotect.model.topology_json import topology_to_json
from haprotect.sources import DiscoverOptions, discover


def corpus_cibs() -> list[Path]:
    root = corpus_dir()
    if root is None:
        return []
    return sorted(
        p for p in (root / "pacemaker").rglob("*.xml") if b"<cib" in p.read_bytes()[:2048]
    )


CIBS = corpus_cibs()


def discover_or_reject(path: Path, use_cli: bool) -> dict[str, object] | str:
    try:
        topology = discover(f"pacemaker+file://{path}", DiscoverOptions(use_cli=use_cli))
    except HaprotectError as exc:
        return exc.message
    return topology_to_json(topology)


def test_the_corpus_is_there(corpus: Path) -> None:
    assert len(CIBS) > 400, f"expected the corpus's 400+ CIBs under {corpus}/pacemaker"


@pytest.mark.parametrize("use_cli", [False, True], ids=["python", "crm_mon"])
def test_every_cib_is_discovered_or_rejected_in_one_line(
    use_cli: bool, corpus: Path, request: pytest.FixtureRequest
) -> None:
    if use_cli:
        request.getfixturevalue("crm_mon")
    rejected: list[str] = []
    for path in CIBS:
        outcome = discover_or_reject(path, use_cli)
        if isinstance(outcome, str):
            assert "\n" not in outcome and outcome.strip(), f"{path}: {outcome!r}"
            assert path.name in outcome or "crm_mon" in outcome, outcome
            rejected.append(outcome)
        else:
            [cluster] = outcome["clusters"]  # type: ignore[misc]
            assert cluster["manager"] == "pacemaker"
    assert len(rejected) < len(CIBS) * 0.1, rejected


def test_hawk_drbd_filesystem_is_ha_with_primary_and_standby(corpus: Path) -> None:
    path = corpus / "pacemaker/other/hawk/rename-clone-instance.xml"
    for use_cli in (False, True):
        outcome = discover_or_reject(path, use_cli)
        assert not isinstance(outcome, str), outcome
        datasets = {d["id"]: d for d in outcome["clusters"][0]["datasets"]}  # type: ignore[index]
        fs = datasets["p_fs_mysql"]
        assert fs["kind"] == "filesystem" and fs["ha"] is True
        assert fs["replication"] == "replicated"
        assert fs["location"]["device"] == "/dev/drbd/by-res/mysql"
        assert fs["primary"] == "node02"
        assert fs["standbys"] == ["node01"]
        assert any("DRBD resource mysql" in why for why in fs["why"])
