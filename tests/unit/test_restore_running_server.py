"""A PostgreSQL server running in a restore target is found before any question or copy.

A live postmaster is what ``postmaster.pid`` names with a live process: here
the test's own process stands for it (the lab's integration tests run a real
one).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from tests.cli_site import PASSWORD, Site, a_set, invoke, make_site
from tests.conftest import require_component

from haprotect.engine import list_sets
from haprotect.errors import ExitCode
from haprotect.model.inventory import Inventory
from haprotect.pgtools import stop_command
from haprotect.plan import plan_restore
from haprotect.repo import Repository
from haprotect.storage.local import LocalStore


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def serving(directory: Path, owner: str | None = None) -> Path:
    """``directory`` as a data directory a server (this process) runs in."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "postmaster.pid").write_text(f"{os.getpid()}\n{directory}\n")
    (directory / "mine").write_text("live data\n")
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    return directory


def test_the_stop_command_runs_as_the_data_directory_s_owner(tmp_path: Path) -> None:
    assert stop_command(tmp_path).endswith(f"pg_ctl -D {tmp_path} stop")
    assert not stop_command(tmp_path).startswith(("runuser", "sudo"))  # ours
    require_component(
        "root (to hand a directory to another user)", os.geteuid() == 0, "run the tests as root"
    )
    os.chown(tmp_path, pwd.getpwnam("nobody").pw_uid, -1)
    command = stop_command(tmp_path)
    assert command.startswith("runuser -u nobody -- ") and command.endswith(" stop")


def test_the_plan_names_a_running_server_in_a_target(site: Site, tmp_path: Path) -> None:
    a_set(site)
    chosen = list_sets(Repository.open(LocalStore(site.repo), PASSWORD))[0]
    out = tmp_path / "out"
    serving(out / "storage" / "data")
    plan = plan_restore(chosen, Inventory(()), to=out)
    problems = {i.item.dataset: i.problems for i in plan.items}
    assert problems["static"] == ()
    (problem,) = problems["data"]
    assert f"a PostgreSQL server (pid {os.getpid()}) runs in {out}/storage/data" in problem
    assert f"-D {out}/storage/data stop" in problem


def test_a_running_server_is_listed_before_any_question(site: Site, tmp_path: Path) -> None:
    set_id = a_set(site)
    target = serving(tmp_path / "out" / "storage" / "data", "nobody" if os.geteuid() == 0 else None)
    result = invoke("restore", set_id, "--repo", site.repo, "--to", str(tmp_path / "out"),
                    stdin="all\nn\n")  # fmt: skip
    assert result.exit_code == ExitCode.NO, result.output
    output = " ".join(result.output.split())
    problem = f"cannot restore: a PostgreSQL server (pid {os.getpid()}) runs in {target}"
    assert problem in output
    assert output.index(problem) < output.index("Restore the others?")
    if os.geteuid() == 0:
        assert "runuser -u nobody -- " in output
    assert (target / "mine").read_text() == "live data\n"


def test_with_yes_nothing_a_running_server_depends_on_is_replaced(
    site: Site, tmp_path: Path
) -> None:
    set_id = a_set(site)
    target = serving(tmp_path / "out" / "storage" / "data")
    result = invoke("restore", set_id, "--repo", site.repo, "--to", str(tmp_path / "out"), "--yes")
    assert result.exit_code == ExitCode.FAILED, result.output
    assert (target / "mine").read_text() == "live data\n"
    assert (target / "postmaster.pid").exists()
    assert not (tmp_path / "out" / "frontend").exists()  # it depends on the storage tier


def test_with_yes_no_tier_is_replaced_under_a_running_server(site: Site, tmp_path: Path) -> None:
    set_id = a_set(site)
    out = tmp_path / "out"
    target = serving(out / "frontend" / "static")
    result = invoke("restore", set_id, "--repo", site.repo, "--to", str(out), "--yes")
    assert result.exit_code == ExitCode.REPOSITORY, result.output
    output = " ".join(result.output.split())
    assert f"frontend/static cannot be restored (a PostgreSQL server (pid {os.getpid()}) " \
        f"runs in {target}" in output  # fmt: skip
    assert "1 tier below it (storage) would be replaced under it" in output
    assert "--tier" in output
    assert not (out / "storage").exists()
    assert (target / "mine").read_text() == "live data\n"


def test_with_yes_and_tiers_chosen_without_it_the_others_are_restored(
    site: Site, tmp_path: Path
) -> None:
    set_id = a_set(site)
    out = tmp_path / "out"
    target = serving(out / "frontend" / "static")
    result = invoke(
        "restore", set_id, "--repo", site.repo, "--to", str(out), "--yes", "--tier", "storage"
    )
    assert result.exit_code == ExitCode.SUCCESS, result.output
    assert (out / "storage" / "data" / "sub" / "file").read_text() == "data\n"
    assert (target / "mine").read_text() == "live data\n"
    alone = invoke(
        "restore", set_id, "--repo", site.repo, "--to", str(out), "--yes", "--tier", "frontend"
    )
    assert alone.exit_code == ExitCode.FAILED, alone.output  # nothing below it: it fails alone
    assert (target / "mine").read_text() == "live data\n"
