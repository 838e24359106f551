"""A repository URL's credentials are shown nowhere: plans, events, progress, errors, repo output.

The URL stays real where it is opened: the S3 store is reached through its
endpoint (here a closed port on 127.0.0.1, so every request fails at once).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from tests.cli_site import PASSWORD, Site, make_site
from typer.testing import CliRunner, Result

from haprotect.cli.main import app
from haprotect.errors import ExitCode
from haprotect.redact import REDACTED, display_url

SECRET = "hunter2"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str) -> Result:
    env = {
        "HAPROTECT_PASSWORD": PASSWORD,
        "HAPROTECT_REPOSITORY": "",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def s3_url() -> str:
    return f"s3://bucket/p?endpoint=http://ak:{SECRET}@127.0.0.1:{closed_port()}"


def test_display_url_drops_credentials_also_percent_encoded() -> None:
    assert display_url("memory://svc:hunter2@h/r") == f"memory://svc:{REDACTED}@h/r"
    encoded = "s3://b/p?endpoint=http%3A%2F%2Fak%3Ahunter2%40h%3A1&region=x"
    assert display_url(encoded) == f"s3://b/p?endpoint=http://ak:{REDACTED}@h:1&region=x"
    assert display_url("file:///srv/100%") == "file:///srv/100%"


def test_the_plan_and_a_storage_error_show_no_credentials(site: Site) -> None:
    url = s3_url()
    rules = site.root / "rules.yaml"
    rules.write_text(f"where: '{url}'\n")
    policy = site.path("s3-policy.yaml")
    topology = f"file://{site.root}/topology.yaml"
    assert run("plan", topology, "--rules", str(rules), "-o", policy).exit_code == 0
    inventory = site.path("inventory.yaml")
    text = run("backup", policy, "--dry-run", "--inventory", inventory)
    as_json = run("backup", policy, "--dry-run", "--json", "--inventory", inventory)
    assert f"-> {display_url(url)}" in text.output
    assert display_url(url) in as_json.output
    failed = run("backup", policy, "--inventory", inventory)
    assert failed.exit_code == ExitCode.STORAGE, failed.output
    assert "Could not connect to the endpoint URL" in failed.output
    snapshots = run("repo", "snapshots", url)
    assert snapshots.exit_code == ExitCode.STORAGE, snapshots.output
    for result in (text, as_json, failed, snapshots):
        assert SECRET not in result.output
        assert REDACTED in result.output


def test_events_progress_and_repo_output_show_no_credentials(site: Site) -> None:
    url = f"memory://svc:{SECRET}@store/repo"
    backup = ("backup", site.path("policy.yaml"), "--repo", url, "--init", "--inventory")
    progress = run(*backup, site.path("inventory.yaml"))
    events = run(*backup, site.path("inventory.yaml"), "--json")
    assert progress.exit_code == 0 and events.exit_code == 0, progress.output + events.output
    (started,) = [
        e for e in map(json.loads, events.stdout.splitlines()) if e["event"] == "set_started"
    ]
    assert started["repository"] == display_url(url)
    init = run("repo", "init", url)
    init_json = run("repo", "init", url, "--json")
    missing = run("repo", "snapshots", url)
    assert missing.exit_code == ExitCode.REPOSITORY
    for result in (progress, events, init, init_json, missing):
        assert SECRET not in result.output, result.output
        assert f"svc:{REDACTED}@store" in result.output
