"""``haprotect policy`` and ``haprotect token`` through the console script.

The catalog is found as a user's would be: the state directory
($HAPROTECT_STATE_DIR), $HAPROTECT_CATALOG, the service config, --catalog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import FIXTURES

from haprotect.catalog.location import find_catalog
from haprotect.errors import ExitCode
from haprotect.policy import default_rules, generate, parse_rules
from haprotect.policy.io import dump_policy
from haprotect.sources import discover
from haprotect.testing.pgserver import TemporaryPostgres

HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HAPROTECT, *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No catalog named anywhere: the one in the state directory under tmp_path."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HAPROTECT_")}
    return {**clean, "HAPROTECT_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200",
            "HAPROTECT_CONFIG": ""}  # fmt: skip


def write_policy(path: Path, rules_text: str | None = None) -> Path:
    """The shop fixture's policy (rules: the defaults, or ``rules_text`` over them)."""
    rules = default_rules() if rules_text is None else parse_rules(rules_text, "rules.yaml")
    topology = discover(f"file://{FIXTURES}/topology/shop.yaml")
    path.write_text(dump_policy(generate(topology, rules, source="file:///shop", now=NOW)))
    return path


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert done.returncode == code, done
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("hint: ")]
    assert len(lines) == 1 and lines[0].startswith("haprotect: error: "), done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_a_policy_is_applied_reviewed_and_approved(env: dict[str, str], tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml")
    done = run(env, "policy", "apply", str(policy))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("policy shop: version 1 stored, pending\n")
    assert (tmp_path / "state" / "catalog.db").is_file()
    again = run(env, "policy", "apply", str(policy))
    assert again.stdout == "policy shop: unchanged, the same as version 1 (pending)\n"
    diff = run(env, "policy", "diff", "shop")
    assert diff.returncode == ExitCode.NO
    assert "+ item shop/pgdata" in diff.stdout and "against nothing approved" in diff.stdout
    approved = run(env, "policy", "approve", "shop", "--comment", "first review")
    assert approved.stdout == "policy shop: version 1 approved\n", approved.stderr

    policy.write_text(policy.read_text().replace("schedule: 0 * * * *", "schedule: '*/15 * * * *'"))
    applied = json.loads(run(env, "policy", "apply", str(policy), "--json").stdout)
    assert (applied["number"], applied["state"], applied["created"]) == (2, "pending", True)
    diff = run(env, "policy", "diff", "shop", "--json")
    report = json.loads(diff.stdout)
    assert diff.returncode == ExitCode.NO and (report["approved"], report["pending"]) == (1, 2)
    assert {c["key"] for c in report["changes"]} == {"shop/pgdata", "shop/uploads"}
    rejected = run(env, "policy", "reject", "shop", "-m", "too often")
    assert rejected.stdout == "policy shop: version 2 rejected\n"

    versions = json.loads(run(env, "policy", "versions", "--json").stdout)
    assert [(v["number"], v["state"], v["comment"]) for v in versions] == [
        (1, "approved", "first review"), (2, "rejected", "too often"),
    ]  # fmt: skip
    assert "text" not in versions[0] and versions[0]["created_by"]
    shown = run(env, "policy", "show", "shop", "--version", "2")
    assert shown.stdout == policy.read_text()
    table = run(env, "policy", "versions", "shop")
    assert "rejected" in table.stdout and "first review" in table.stdout


def test_auto_approve_in_the_rules_approves_at_apply(env: dict[str, str], tmp_path: Path) -> None:
    policy = write_policy(tmp_path / "policy.yaml", "auto_approve: true\n")
    done = run(env, "policy", "apply", str(policy))
    assert done.stdout == "policy shop: version 1 stored, approved (auto_approve)\n", done.stderr
    shown = json.loads(run(env, "policy", "show", "shop", "--json").stdout)
    assert shown["state"] == "approved" and shown["text"] == policy.read_text()


def test_a_token_s_secret_is_printed_once_and_stored_nowhere(
    env: dict[str, str], tmp_path: Path
) -> None:
    done = run(env, "token", "add", "grafana", "--role", "viewer")
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret.startswith("hapt_") and "shown this once" in done.stderr
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir())
    assert secret.encode() not in stored
    listed = run(env, "token", "list", "--json")
    assert secret not in listed.stdout
    assert [(t["name"], t["role"], t["revoked_at"]) for t in json.loads(listed.stdout)] == [
        ("grafana", "viewer", None)
    ]
    assert run(env, "token", "revoke", "grafana").returncode == 0
    (token,) = json.loads(run(env, "token", "list", "--json").stdout)
    assert token["revoked_at"] is not None
    one_line_error(run(env, "token", "revoke", "nobody"), ExitCode.USAGE, "no token named 'nobody'")
    one_line_error(
        run(env, "token", "add", "x", "--role", "root"), ExitCode.USAGE, "unknown role 'root'"
    )


def test_errors_are_one_line_naming_the_file_or_object(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    one_line_error(run(env, "policy", "apply", str(missing)), ExitCode.INPUT, str(missing))
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: haprotect/v1\nkind: Policy\n")
    one_line_error(run(env, "policy", "apply", str(broken)), ExitCode.INPUT, str(broken))
    one_line_error(
        run(env, "policy", "approve", "web"), ExitCode.USAGE, "no policy 'web' in the catalog"
    )
    one_line_error(
        run(env, "policy", "versions", "--catalog", "mysql://h/db"),
        ExitCode.COMPONENT, "only SQLite and PostgreSQL",
    )  # fmt: skip
    write_policy(tmp_path / "p.yaml")
    run(
        env,
        "policy",
        "apply",
        str(tmp_path / "p.yaml"),
        "--catalog",
        "sqlite:///" + str(tmp_path / "c.db"),
    )
    one_line_error(
        run(env, "policy", "show", "shop", "-v", "3", "--catalog", f"sqlite:///{tmp_path}/c.db"),
        ExitCode.USAGE, "policy 'shop' has no version 3",
    )  # fmt: skip


def test_the_catalog_is_found_in_order(tmp_path: Path) -> None:
    config = tmp_path / "service.yaml"
    config.write_text("catalog: sqlite:////srv/from-config.db\n")
    env = {"HAPROTECT_CONFIG": str(config), "HAPROTECT_STATE_DIR": "/srv/state"}
    assert (
        find_catalog("sqlite:////x.db", {**env, "HAPROTECT_CATALOG": "y"}).url == "sqlite:////x.db"
    )
    found = find_catalog(None, {**env, "HAPROTECT_CATALOG": "sqlite:////env.db"})
    assert (found.url, found.origin) == ("sqlite:////env.db", "$HAPROTECT_CATALOG")
    assert find_catalog(None, env).url == "sqlite:////srv/from-config.db"
    config.write_text("state_dir: /srv/conf-state\n")
    assert find_catalog(None, {"HAPROTECT_CONFIG": str(config)}).url == (
        "sqlite:////srv/conf-state/catalog.db"
    )
    assert find_catalog(None, env).url == "sqlite:////srv/state/catalog.db"
    assert find_catalog(None, {"HAPROTECT_CONFIG": ""}).url.endswith("/catalog.db")


def test_an_unreadable_service_config_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "service.yaml"
    config.write_text("catalog: [unclosed\n")
    done = run({**env, "HAPROTECT_CONFIG": str(config)}, "policy", "versions")
    one_line_error(done, ExitCode.INPUT, str(config))
    done = run({**env, "HAPROTECT_CONFIG": str(tmp_path / "none.yaml")}, "token", "list")
    one_line_error(done, ExitCode.INPUT, str(tmp_path / "none.yaml"))
    done = run({**env, "HAPROTECT_CATALOG": "nonsense"}, "token", "list")
    one_line_error(
        done, ExitCode.COMPONENT, "'nonsense' is not a database URL (from $HAPROTECT_CATALOG)"
    )


def test_review_on_a_postgresql_catalog(
    env: dict[str, str], tmp_path: Path, postgres: TemporaryPostgres
) -> None:
    url = postgres.create_database("cli_review")
    policy = write_policy(tmp_path / "policy.yaml")
    pg_env = {**env, "HAPROTECT_CATALOG": url}
    assert run(pg_env, "policy", "apply", str(policy)).returncode == 0
    assert run(pg_env, "policy", "approve", "shop").stdout == "policy shop: version 1 approved\n"
    (version,) = json.loads(run(env, "policy", "versions", "--json", "--catalog", url).stdout)
    assert version["state"] == "approved"
    assert not (tmp_path / "state").exists()  # nothing went to the default catalog
