"""Every command's ``--help`` lists its exit statuses, and the failures it meets exit with them.

The help of every command (found by walking the application, so a new
command is held to it too) ends with ``Exit status: 0 ..., 2 bad usage,
...``: each code must be one of :class:`~haprotect.errors.ExitCode`, named in
its words (0 and 1 say what they mean for the command). Then failures are
provoked, a few per command, and each must exit with a code its help lists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.cli_commands import command_paths
from tests.cli_site import PASSWORD, Site, a_set, invoke, make_site
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.errors import ExitCode
from haprotect.model.result import Status
from haprotect.repo import KdfParams, Repository
from haprotect.repo.lock import Locker
from haprotect.storage.local import LocalStore

STATUS = re.compile(r"Exit status: (.+?)\.(?:\s|$)")
ENTRY = re.compile(r"(\d+) (\S.*)")


def listed(path: tuple[str, ...]) -> dict[int, str]:
    """The exit statuses a command's help lists, code to words."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    found = STATUS.findall(text)
    assert len(found) == 1, f"{' '.join(path)}: no one 'Exit status: ...' in its help"
    codes: dict[int, str] = {}
    for entry in found[0].split(", "):
        match = ENTRY.fullmatch(entry)
        assert match, f"{' '.join(path)}: {entry!r} is not 'CODE words'"
        codes[int(match.group(1))] = match.group(2)
    return codes


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_lists_its_exit_statuses_in_the_table_s_words(path: tuple[str, ...]) -> None:
    codes = listed(path)
    assert ExitCode.SUCCESS in codes and ExitCode.USAGE in codes
    assert list(codes) == sorted(codes)
    for code, words in codes.items():
        assert code in set(ExitCode), f"{' '.join(path)}: {code} is in no table"
        if code >= ExitCode.USAGE:
            assert words == ExitCode(code).words, f"{' '.join(path)}: {code} {words}"


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_an_unknown_option_is_bad_usage(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--no-such-option"])
    assert result.exit_code == ExitCode.USAGE in listed(path)


def test_runs_end_with_the_codes_of_the_table() -> None:
    assert Status.COMPLETED.exit_code == ExitCode.SUCCESS
    assert Status.PARTIALLY_FAILED.exit_code == ExitCode.PARTIALLY_FAILED
    assert Status.FAILED.exit_code == ExitCode.FAILED


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def backed_up(site: Site, *names: str) -> str:
    """Back up the site's directories (data) with ``repo backup``; the snapshot id."""
    paths = [site.path(name) for name in names or ("data",)]
    done = invoke("repo", "backup", site.repo, *paths, "--json")
    assert done.exit_code == 0, done.output
    return str(json.loads(done.stdout.splitlines()[-1])["snapshot"]["id"])


Case = Callable[[Site], tuple[list[str], dict[str, str]]]


def args(*parts: str, **options: str) -> tuple[list[str], dict[str, str]]:
    return list(parts), options


CASES: dict[str, tuple[tuple[str, ...], ExitCode, Case]] = {
    # the cluster and policy verbs
    "discover: unknown scheme": (("discover",), ExitCode.USAGE, lambda s: args("ftp://x")),
    "discover: no such file": (
        ("discover",), ExitCode.INPUT, lambda s: args(f"file://{s.root}/none.yaml"),
    ),
    "plan: no rules file": (
        ("plan",), ExitCode.INPUT,
        lambda s: args(f"file://{s.root}/topology.yaml", "--rules", s.path("none.yaml")),
    ),
    "validate: ok": (("validate",), ExitCode.SUCCESS, lambda s: args(s.path("policy.yaml"))),
    "validate: no such file": (("validate",), ExitCode.INPUT, lambda s: args(s.path("x.yaml"))),
    "validate: not a policy": (
        ("validate",), ExitCode.INPUT, lambda s: args(s.path("topology.yaml")),
    ),
    "explain: no such data set": (
        ("explain",), ExitCode.USAGE, lambda s: args(s.path("policy.yaml"), "-d", "nope"),
    ),
    "diff: the same": (
        ("diff",), ExitCode.SUCCESS, lambda s: args(s.path("policy.yaml"), s.path("policy.yaml")),
    ),
    "diff: no such file": (
        ("diff",), ExitCode.INPUT, lambda s: args(s.path("policy.yaml"), s.path("x.yaml")),
    ),
    "drift: no such cluster file": (
        ("drift",), ExitCode.INPUT,
        lambda s: args(s.path("policy.yaml"), "--source", f"file://{s.root}/none.yaml"),
    ),
    "schedule: ok": (("schedule",), ExitCode.SUCCESS, lambda s: args(s.path("policy.yaml"))),
    "schedule: not a time": (
        ("schedule",), ExitCode.USAGE, lambda s: args(s.path("policy.yaml"), "--from", "soon"),
    ),
    "schedule: no such file": (("schedule",), ExitCode.INPUT, lambda s: args(s.path("x.yaml"))),
    "rules: nothing asked": (("rules",), ExitCode.USAGE, lambda s: args()),
    "rules: no such file": (("rules",), ExitCode.INPUT, lambda s: args(s.path("x.yaml"))),
    "policy apply: no such file": (
        ("policy", "apply"), ExitCode.INPUT, lambda s: args(s.path("none.yaml"), *catalog(s)),
    ),
    "policy apply: ok": (
        ("policy", "apply"), ExitCode.SUCCESS, lambda s: args(s.path("policy.yaml"), *catalog(s)),
    ),
    "policy approve: no such policy": (
        ("policy", "approve"), ExitCode.USAGE, lambda s: args("nope", *catalog(s)),
    ),
    "policy versions: not a catalog URL": (
        ("policy", "versions"), ExitCode.COMPONENT, lambda s: args("--catalog", "nonsense"),
    ),
    "token revoke: no such token": (
        ("token", "revoke"), ExitCode.USAGE, lambda s: args("nope", *catalog(s)),
    ),
    "lab status: no lab": (("lab", "status"), ExitCode.USAGE, lambda s: args("--dir", s.path("l"))),
    "lab verify: no lab": (("lab", "verify"), ExitCode.USAGE, lambda s: args("--dir", s.path("l"))),
    # the repository verbs
    "repo init: exists": (("repo", "init"), ExitCode.REPOSITORY, lambda s: args(s.repo)),
    "repo init: no passphrase file": (
        ("repo", "init"), ExitCode.INPUT,
        lambda s: args(s.path("new"), "--password-file", s.path("none")),
    ),
    "repo backup: only missing paths": (
        ("repo", "backup"), ExitCode.FAILED, lambda s: args(s.repo, s.path("x"), s.path("y")),
    ),
    "repo backup: a missing path": (
        ("repo", "backup"), ExitCode.PARTIALLY_FAILED,
        lambda s: args(s.repo, s.path("x"), s.path("data")),
    ),
    "repo backup: wrong passphrase": (
        ("repo", "backup"), ExitCode.REPOSITORY,
        lambda s: args(s.repo, s.path("data"), password="nope"),
    ),
    "repo backup: no repository": (
        ("repo", "backup"), ExitCode.REPOSITORY, lambda s: args(s.path("none"), s.path("data")),
    ),
    "repo snapshots: wrong passphrase": (
        ("repo", "snapshots"), ExitCode.REPOSITORY, lambda s: args(s.repo, password="nope"),
    ),
    "repo restore: unknown snapshot": (
        ("repo", "restore"), ExitCode.REPOSITORY,
        lambda s: args(s.repo, "0123abcd", "--target", s.path("out")),
    ),
    "repo restore: an include that matches nothing": (
        ("repo", "restore"), ExitCode.USAGE,
        lambda s: args(s.repo, backed_up(s), "--target", s.path("out"), "--include", "/nothing"),
    ),
    "repo restore: a non-empty directory in the way of one file": (
        ("repo", "restore"), ExitCode.PARTIALLY_FAILED,
        lambda s: args(s.repo, backed_up(s, "data", "static"), "--target", blocked(s)),
    ),
    "repo restore: a non-empty directory in the way of the only file": (
        ("repo", "restore"), ExitCode.FAILED,
        lambda s: args(s.repo, backed_up(s), "--target", blocked(s)),
    ),
    "repo forget: no rule": (("repo", "forget"), ExitCode.USAGE, lambda s: args(s.repo)),
    "repo check: damaged": (("repo", "check"), ExitCode.REPOSITORY, lambda s: args(damaged(s))),
    "repo stats: wrong passphrase": (
        ("repo", "stats"), ExitCode.REPOSITORY, lambda s: args(s.repo, password="nope"),
    ),
    "repo copy: wrong passphrase of the target": (
        ("repo", "copy"), ExitCode.REPOSITORY,
        lambda s: args(s.repo, another_repo(s, "other")),
    ),
    "repo unlock: no repository": (
        ("repo", "unlock"), ExitCode.REPOSITORY, lambda s: args(s.path("none")),
    ),
    # the run verbs
    "backup: no policy": (("backup",), ExitCode.INPUT, lambda s: args(s.path("none.yaml"))),
    "backup: everything missing": (
        ("backup",), ExitCode.FAILED, lambda s: run_args(s, remove=("data", "static")),
    ),
    "backup: a data set missing": (
        ("backup",), ExitCode.PARTIALLY_FAILED, lambda s: run_args(s, remove=("static",)),
    ),
    "backup: wrong passphrase": (
        ("backup",), ExitCode.REPOSITORY, lambda s: run_args(s, password="nope"),
    ),
    "backup: no repository": (
        ("backup",), ExitCode.REPOSITORY,
        lambda s: args(s.path("policy.yaml"), "--repo", s.path("none")),
    ),
    "snapshots: which repository": (("snapshots",), ExitCode.USAGE, lambda s: args()),
    "snapshots: wrong passphrase": (
        ("snapshots",), ExitCode.REPOSITORY, lambda s: args("--repo", s.repo, password="nope"),
    ),
    "restore: which repository": (("restore",), ExitCode.USAGE, lambda s: args("latest")),
    "restore: not confirmed": (
        ("restore",), ExitCode.NO,
        lambda s: args(
            a_set(s), "--repo", s.repo, "--to", s.path("out"), "--tier", "storage", stdin="n\n"
        ),
    ),
    "restore: nothing can be restored here": (
        ("restore",), ExitCode.FAILED,
        lambda s: args(
            a_set(s), "--repo", s.repo, "--yes", "--inventory", s.path("remote.yaml")
        ),
    ),
}  # fmt: skip

LOCKED: dict[str, tuple[tuple[str, ...], Case]] = {
    "repo backup": (("repo", "backup"), lambda s: args(s.repo, s.path("data"))),
    "repo restore": (
        ("repo", "restore"),
        lambda s: args(s.repo, "latest", "--target", s.path("out")),
    ),
    "repo forget": (("repo", "forget"), lambda s: args(s.repo, "--keep-last", "1")),
    "repo prune": (("repo", "prune"), lambda s: args(s.repo)),
    "repo check": (("repo", "check"), lambda s: args(s.repo)),
    "repo copy": (("repo", "copy"), lambda s: args(s.repo, another_repo(s))),
}


def catalog(site: Site) -> tuple[str, str]:
    """``--catalog`` naming a catalog in the site, never the machine's."""
    return ("--catalog", f"sqlite:///{site.root}/catalog.db")


def blocked(site: Site) -> str:
    """A restore target holding a non-empty directory where the snapshot has a file."""
    target = site.root / "blocked"
    in_the_way = target / site.path("data").lstrip("/") / "sub" / "file"
    in_the_way.mkdir(parents=True)
    (in_the_way / "mine").write_text("keep me\n")
    return str(target)


def another_repo(site: Site, password: str = PASSWORD) -> str:
    """A second, empty repository of the site (to copy into)."""
    path = site.path("another")
    Repository.init(LocalStore(path), password, kdf=KdfParams(n=1 << 10))
    return path


def damaged(site: Site) -> str:
    backed_up(site)
    next(p for p in (site.root / "repo" / "data").rglob("*") if p.is_file()).unlink()
    return site.repo


def run_args(
    site: Site, *, remove: tuple[str, ...] = (), password: str = PASSWORD
) -> tuple[list[str], dict[str, str]]:
    for name in remove:
        shutil.rmtree(site.root / name)
    return args(
        site.path("policy.yaml"), "--repo", site.repo, "--inventory", site.path("inventory.yaml"),
        password=password,
    )  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_provoked_failure_exits_with_a_code_its_help_lists(site: Site, case: str) -> None:
    path, expected, make = CASES[case]
    parts, options = make(site)
    result = invoke(*path, *parts, **options)
    assert result.exit_code == expected, result.output
    assert expected in listed(path), f"{' '.join(path)} exits {expected}; its help omits it"
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", list(LOCKED))
def test_a_locked_repository_exits_8_where_the_help_says_so(site: Site, case: str) -> None:
    path, make = LOCKED[case]
    backed_up(site)
    backed_up(site)  # so that forget --keep-last 1 has one to remove
    parts, options = make(site)
    held = Locker(LocalStore(site.repo), pid=os.getppid(), refresh_every=None).acquire(
        exclusive=True, operation="prune"
    )
    try:
        result = invoke(*path, *parts, **options)
    finally:
        held.release()
    assert result.exit_code == ExitCode.LOCKED, result.output
    assert listed(path)[ExitCode.LOCKED] == "locked"


def test_a_backup_of_only_missing_paths_writes_no_snapshot(site: Site) -> None:
    result = invoke("repo", "backup", site.repo, site.path("x"), site.path("y"))
    assert result.exit_code == ExitCode.FAILED
    assert "nothing backed up" in result.output and site.path("x") in result.output
    assert Repository.open(LocalStore(site.repo), PASSWORD).snapshots() == []


def test_a_run_that_copies_nothing_leaves_no_set(site: Site) -> None:
    parts, options = run_args(site, remove=("data", "static"))
    assert invoke("backup", *parts, **options).exit_code == ExitCode.FAILED
    assert Repository.open(LocalStore(site.repo), PASSWORD).snapshots() == []


def test_an_include_that_matches_nothing_is_named_and_nothing_is_written(site: Site) -> None:
    snapshot = backed_up(site)
    out = site.root / "out"
    result = invoke(
        "repo", "restore", site.repo, snapshot, "--target", str(out),
        "--include", site.path("data"), "--include", "/nothing/here",
    )  # fmt: skip
    assert result.exit_code == ExitCode.USAGE
    assert "--include /nothing/here" in result.output and site.path("data") in result.output
    assert not out.exists()


def test_a_non_empty_directory_in_the_way_fails_that_file_alone(site: Site) -> None:
    snapshot = backed_up(site)
    (site.root / "data" / "other").write_text("other\n")
    snapshot = backed_up(site)
    target = blocked(site)
    result = invoke("repo", "restore", site.repo, snapshot, "--target", target)
    assert result.exit_code == ExitCode.PARTIALLY_FAILED, result.output
    restored = Path(target) / site.path("data").lstrip("/")
    assert (restored / "other").read_text() == "other\n"
    assert (restored / "sub" / "file" / "mine").read_text() == "keep me\n"
    assert "sub/file: a directory in the target is in its place" in result.output
