"""``haprotect status`` reads the service's catalog: each data set's protection, 1 on a breach."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from haprotect.catalog import Catalog
from haprotect.cli.main import app
from haprotect.policy.generate import generate
from haprotect.policy.io import dump_policy
from haprotect.policy.rules_file import load_rules
from haprotect.testing.builders import topology, web_cluster


def setup(tmp_path: Path, approved_at: datetime) -> Path:
    policy = generate(topology(web_cluster()), load_rules(None), source="x://", now=approved_at)
    policy = replace(policy, items=tuple(replace(i, schedule="0 * * * *") for i in policy.items))
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "service.yaml"
    config.write_text(f"state_dir: {state}\n")
    with Catalog.open(f"sqlite:///{state / 'catalog.db'}", clock=lambda: approved_at) as catalog:
        catalog.apply_policy(policy.metadata.name, dump_policy(policy), by="t", auto_approve=True)
    return config


def test_a_fresh_policy_is_listed_and_its_rpo_kept(tmp_path: Path) -> None:
    config = setup(tmp_path, datetime.now(UTC))
    result = CliRunner().invoke(app, ["status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["datasets"]
    assert all(d["last_complete_set"] is None and not d["rpo_breached"] for d in data["datasets"])


def test_a_policy_that_never_ran_for_hours_breaches_its_rpo(tmp_path: Path) -> None:
    config = setup(tmp_path, datetime.now(UTC) - timedelta(hours=3))
    result = CliRunner().invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "breached" in result.stdout and "not protected" in result.stdout


def test_without_a_policy_it_says_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "service.yaml"
    config.write_text(f"state_dir: {tmp_path}\n")
    result = CliRunner().invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "haprotect policy apply" in result.stdout
