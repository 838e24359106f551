"""``haprotect repo copy``: snapshots and whole sets into another repository, checked there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.cli_site import PASSWORD, Site, a_set, invoke, make_site

from haprotect.engine import list_sets
from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore

OTHER = "another secret"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    made = make_site(tmp_path)
    Repository.init(LocalStore(made.path("copy")), OTHER, kdf=KdfParams(n=1 << 10))
    (tmp_path / "other.pass").write_text(OTHER + "\n")
    return made


def copy(site: Site, *extra: str) -> dict[str, Any]:
    done = invoke(
        "repo", "copy", site.repo, site.path("copy"), *extra,
        "--to-password-file", site.path("other.pass"), "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    last: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert last["type"] == "summary" and last["command"] == "copy"
    return last


def test_a_set_is_copied_whole_checks_and_a_second_copy_adds_nothing(site: Site) -> None:
    set_id = a_set(site)
    other = invoke("repo", "backup", site.repo, site.path("static"))
    assert other.exit_code == 0, other.output
    done = copy(site, "--set", set_id[:6])
    source = Repository.open(LocalStore(site.repo), PASSWORD)
    of_set = {s.id for s in source.snapshots() if f"set={set_id}" in s.tags}
    assert {s["source"] for s in done["snapshots"]} == of_set and done["copied"] == len(of_set)
    checked = invoke(
        "repo", "check", site.path("copy"), "--read-data", "--password-file",
        site.path("other.pass"),
    )  # fmt: skip
    assert checked.exit_code == 0, checked.output
    target = Repository.open(LocalStore(site.path("copy")), OTHER)
    [copied] = list_sets(target)
    assert copied.id == set_id and copied.complete
    again = copy(site, "--set", set_id)
    assert again["copied"] == 0 and again["already_copied"] == len(of_set)
    restored = invoke(
        "restore", set_id, "--repo", site.path("copy"), "--to", site.path("out"), "--yes",
        "--password-file", site.path("other.pass"),
    )  # fmt: skip
    assert restored.exit_code == 0, restored.output
    for tier, name in (("storage", "data"), ("frontend", "static")):
        assert (Path(site.path("out")) / tier / name / "sub" / "file").read_text() == f"{name}\n"


def test_a_dry_run_names_what_it_would_copy_in_words(site: Site) -> None:
    assert invoke("repo", "backup", site.repo, site.path("data")).exit_code == 0
    done = invoke(
        "repo", "copy", site.repo, site.path("copy"), "--dry-run",
        "--to-password-file", site.path("other.pass"),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "would copy 1 snapshot to" in done.stdout
    assert Repository.open(LocalStore(site.path("copy")), OTHER).snapshots() == []


def test_the_wrong_passphrase_of_the_target_is_refused(site: Site) -> None:
    assert invoke("repo", "backup", site.repo, site.path("data")).exit_code == 0
    done = invoke("repo", "copy", site.repo, site.path("copy"))
    assert done.exit_code == 7, done.output
    assert "wrong passphrase" in done.output


def test_init_creates_a_missing_target_and_without_it_the_error_says_so(site: Site) -> None:
    set_id = a_set(site)
    target = site.path("new-copy")
    args = ("repo", "copy", site.repo, target, "--set", set_id, "--to-password-file",
            site.path("other.pass"))  # fmt: skip
    refused = invoke(*args)
    assert refused.exit_code == 7, refused.output
    done = invoke(*args, "--init")
    assert done.exit_code == 0, done.output
    [copied] = list_sets(Repository.open(LocalStore(target), OTHER))
    assert copied.id == set_id
