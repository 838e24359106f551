"""The policy verbs end to end: plan, validate, explain, diff, rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.policy import defaults_text, load_policy

TOPOLOGY = """\
apiVersion: haprotect/v1
kind: Topology
clusters:
  - name: shop
    nodes: [db1, db2, web1]
    datasets:
      - id: pgdata
        kind: postgresql
        location: {pgdata: /var/lib/pg}
        replication: replicated
        primary: db1
        standbys: [db2]
        resource: pg
      - id: uploads
        kind: filesystem
        location: {directory: /srv/uploads}
        replication: shared
        primary: web1
        ha: true
      - id: tmp
        kind: filesystem
        location: {directory: /tmp/x}
        replication: local
        primary: web1
    applications:
      - name: shop
        tiers:
          - {name: database, resources: [pg], datasets: [pgdata]}
          - {name: web, resources: [nginx], datasets: [uploads], depends_on: [database]}
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "shop.yaml"
    path.write_text(TOPOLOGY, encoding="utf-8")
    return f"file://{path}"


@pytest.fixture
def policy_file(runner: CliRunner, source: str, tmp_path: Path) -> Path:
    out = tmp_path / "policy.yaml"
    result = runner.invoke(app, ["plan", source, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_plan_writes_a_policy_and_summarises_on_stderr(
    runner: CliRunner, source: str, tmp_path: Path
) -> None:
    out = tmp_path / "p.yaml"
    result = runner.invoke(app, ["plan", source, "-o", str(out), "--no-cli"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"wrote {out}: 2 items (2 HA), 1 consistency group, 1 excluded; clusters shop"
    )
    policy = load_policy(out)
    assert [i.dataset for i in policy.items] == ["pgdata", "uploads"]
    assert policy.groups[0].quiesce_order == ("web", "database")


def test_plan_without_output_prints_yaml(runner: CliRunner, source: str) -> None:
    result = runner.invoke(app, ["plan", source])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert data["kind"] == "Policy"
    assert data["metadata"]["source"] == source


def test_plan_json_without_output_prints_the_policy(runner: CliRunner, source: str) -> None:
    result = runner.invoke(app, ["plan", source, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["apiVersion"] == "haprotect/v1"
    assert result.stderr == ""


def test_plan_json_with_output_prints_a_summary(
    runner: CliRunner, source: str, tmp_path: Path
) -> None:
    out = tmp_path / "p.yaml"
    result = runner.invoke(app, ["plan", source, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["written"] == str(out)
    assert summary["items"] == ["shop/pgdata", "shop/uploads"]
    assert summary["excluded"] == ["shop/tmp"]


def test_plan_with_rules_and_a_warning_for_unknown_datasets(
    runner: CliRunner, source: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("include_non_ha: true\ndatasets: {pgdat: {copies: 5}}\n", encoding="utf-8")
    out = tmp_path / "p.yaml"
    result = runner.invoke(app, ["plan", source, "--rules", str(rules), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: rules datasets.pgdat matches no data set" in result.stderr
    assert len(load_policy(out).items) == 3


def test_plan_with_bad_rules_fails_in_one_line(
    runner: CliRunner, source: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("ha:\n  schedule: 'every hour'\n", encoding="utf-8")
    result = runner.invoke(app, ["plan", source, "--rules", str(rules)])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"haprotect: error: {rules}:2: ha.schedule: invalid cron")


def test_validate_ok(runner: CliRunner, policy_file: Path) -> None:
    result = runner.invoke(app, ["validate", str(policy_file)])
    assert result.exit_code == 0
    assert result.stdout == f"{policy_file}: OK (2 items, 1 group, 1 excluded)\n"
    result = runner.invoke(app, ["validate", "--json", str(policy_file)])
    assert json.loads(result.stdout) == {
        "ok": True,
        "file": str(policy_file),
        "items": 2,
        "groups": 1,
        "excluded": 1,
    }


def test_validate_error_is_one_line_and_non_zero(runner: CliRunner, policy_file: Path) -> None:
    text = policy_file.read_text(encoding="utf-8").replace("copies: 2", "copies: 0", 1)
    policy_file.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(policy_file)])
    assert result.exit_code == 3
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"haprotect: error: {policy_file}:")
    assert "spec.items[0].copies: input should be greater than or equal to 1" in line


def test_explain_shows_reasons(runner: CliRunner, policy_file: Path) -> None:
    result = runner.invoke(app, ["explain", str(policy_file)])
    assert result.exit_code == 0, result.output
    assert "read_from: standby db2" in result.stdout
    assert "quiesce_order: web -> database" in result.stdout
    assert "shop/tmp" in result.stdout


def test_explain_json_and_filter(runner: CliRunner, policy_file: Path) -> None:
    result = runner.invoke(app, ["explain", str(policy_file), "--json", "-d", "uploads"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [i["key"] for i in data["items"]] == ["shop/uploads"]
    result = runner.invoke(app, ["explain", str(policy_file), "-d", "nope"])
    assert result.exit_code == 2
    assert "no data set 'nope'" in result.stderr


def test_diff_exit_codes_follow_diff(
    runner: CliRunner, policy_file: Path, source: str, tmp_path: Path
) -> None:
    same = runner.invoke(app, ["diff", str(policy_file), str(policy_file)])
    assert same.exit_code == 0
    assert "no differences" in same.stdout
    rules = tmp_path / "r.yaml"
    rules.write_text("ha: {copies: 3}\n", encoding="utf-8")
    other = tmp_path / "other.yaml"
    runner.invoke(app, ["plan", source, "--rules", str(rules), "-o", str(other)])
    changed = runner.invoke(app, ["diff", str(policy_file), str(other)])
    assert changed.exit_code == 1
    assert "~ item shop/pgdata: copies 2 -> 3" in changed.stdout.splitlines()
    as_json = runner.invoke(app, ["diff", "--json", str(policy_file), str(other)])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["equal"] is False
    broken = runner.invoke(app, ["diff", str(policy_file), str(tmp_path / "missing.yaml")])
    assert broken.exit_code == 3


def test_rules_show_defaults(runner: CliRunner) -> None:
    result = runner.invoke(app, ["rules", "--show-defaults"])
    assert result.exit_code == 0
    assert result.stdout == defaults_text()
    as_json = runner.invoke(app, ["rules", "--show-defaults", "--json"])
    assert json.loads(as_json.stdout)["ha"]["priority"] == "high"


def test_rules_shows_effective_rules_of_a_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("presets: [hipaa]\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", str(path)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["presets"] == ["hipaa"]


def test_rules_needs_exactly_one_of_file_or_defaults(runner: CliRunner) -> None:
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 2
    assert "give either --show-defaults or a rules file" in result.stderr


@pytest.mark.parametrize("verb", ["plan", "validate", "explain", "diff", "rules"])
def test_every_verb_has_help(runner: CliRunner, verb: str) -> None:
    result = runner.invoke(app, [verb, "--help"])
    assert result.exit_code == 0
    assert "--json" in result.stdout
