"""The rules file: documented defaults, partial overrides, one-line errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from haprotect.errors import PolicyError
from haprotect.model.policy import Fallback, Priority, ReadRole, Retention
from haprotect.policy import default_rules, defaults_text, generate, load_rules, parse_rules
from haprotect.policy.io import dump_policy, dump_yaml, parse_policy
from haprotect.policy.rules_file import rules_to_data
from haprotect.testing.builders import topology, web_cluster

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def test_defaults_favour_ha_data() -> None:
    rules = default_rules()
    assert rules.include_non_ha is False
    assert rules.protect_lower_layers is False
    assert rules.presets == ()
    assert rules.ha.priority is Priority.HIGH and rules.non_ha.priority is Priority.LOW
    assert rules.ha.copies > rules.non_ha.copies
    assert rules.ha.retention.keep_yearly > rules.non_ha.retention.keep_yearly
    assert rules.replicated.read_from is ReadRole.STANDBY
    assert rules.replicated.fallback is Fallback.PRIMARY
    assert rules.where == "file:///var/lib/haprotect/repository"
    assert rules.origin is None and rules.overridden == frozenset()


def test_docs_show_the_packaged_defaults_verbatim() -> None:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"<!-- defaults -->\n```yaml\n(.*?)```\n", text, re.S)
    assert match is not None, "docs/policy.md lost its defaults block"
    assert match.group(1) == defaults_text()


def test_empty_rules_file_is_the_defaults() -> None:
    rules = parse_rules("# nothing to change\n", "r.yaml")
    assert rules_to_data(rules) == rules_to_data(default_rules())
    assert rules.origin == "r.yaml"


def test_partial_override_merges_key_by_key() -> None:
    rules = parse_rules("ha:\n  retention:\n    keep_daily: 31\n", "r.yaml")
    assert rules.ha.retention == Retention(24, 31, 8, 12, 1)
    assert rules.ha.schedule == default_rules().ha.schedule
    assert rules.non_ha == default_rules().non_ha


def test_provenance_names_the_file_only_for_what_it_set() -> None:
    rules = parse_rules("ha:\n  retention:\n    keep_daily: 31\n", "r.yaml")
    assert rules.provenance("ha.retention") == "rule ha.retention (from r.yaml)"
    assert rules.provenance("ha.schedule") == "rule ha.schedule (default)"
    assert rules.provenance("ha") == "rule ha (from r.yaml)"
    assert rules.provenance("non_ha.retention") == "rule non_ha.retention (default)"


def test_dataset_rules_are_found_by_id_or_cluster_slash_id() -> None:
    rules = parse_rules("datasets:\n  c1/db: {copies: 4}\n  fs: {include: false}\n", "r.yaml")
    found = rules.for_dataset("c1", "db")
    assert found is not None and found[1].copies == 4
    assert rules.for_dataset("c2", "db") is None
    found = rules.for_dataset("any", "fs")
    assert found is not None and found[1].include is False


def test_effective_rules_round_trip_through_the_rules_form() -> None:
    text = "presets: [sox]\ndatasets: {db: {priority: critical, retention: {keep_daily: 9}}}\n"
    rules = parse_rules(text, "r.yaml")
    data = rules_to_data(rules)
    assert data["datasets"] == {"db": {"priority": "critical", "retention": {"keep_daily": 9}}}
    again = parse_rules(dump_yaml(data), "again.yaml")
    assert rules_to_data(again) == data


def test_protect_lower_layers_is_read_reported_and_printed() -> None:
    rules = parse_rules("protect_lower_layers: true\n", "r.yaml")
    assert rules.protect_lower_layers is True
    assert rules.provenance("protect_lower_layers", "true") == (
        "rule protect_lower_layers is true (from r.yaml)"
    )
    data = rules_to_data(rules)
    assert list(data)[3:5] == ["include_non_ha", "protect_lower_layers"]
    assert data["protect_lower_layers"] is True
    assert rules_to_data(default_rules())["protect_lower_layers"] is False


def test_load_rules_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("include_non_ha: true\n", encoding="utf-8")
    assert load_rules(path).include_non_ha is True
    assert load_rules(None) == default_rules()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ha:\n  priority: high\n  schedule: '61 * * * *'\n",
            "r.yaml:3: ha.schedule: invalid cron expression '61 * * * *'",
        ),
        (
            "ha:\n  schedule: '0 * * *'\n",
            "r.yaml:2: ha.schedule: invalid cron expression '0 * * *': expected 5 fields "
            "(minute hour day-of-month month day-of-week)",
        ),
        ("non_ha:\n  copys: 2\n", "r.yaml:2: non_ha.copys: unknown field"),
        ("ha:\n  copies: two\n", "r.yaml:2: ha.copies: input should be a valid integer"),
        ("ha:\n  copies: 0\n", "r.yaml:2: ha.copies: input should be greater than or equal to 1"),
        ("include_non_ha: 'yes'\n", "r.yaml:1: include_non_ha: input should be a valid boolean"),
        (
            "protect_lower_layers: 1\n",
            "r.yaml:1: protect_lower_layers: input should be a valid boolean",
        ),
        (
            "replicated:\n  fallback: retry\n",
            "r.yaml:2: replicated.fallback: input should be 'primary', 'wait' or 'fail'",
        ),
        (
            "where: backups\n",
            "r.yaml:1: where: invalid repository 'backups': expected a URL "
            "such as file:///path or s3://bucket/prefix, or an absolute path",
        ),
        (
            "ha:\n  retention: {keep_hourly: 0, keep_daily: 0, keep_weekly: 0,\n"
            "    keep_monthly: 0, keep_yearly: 0}\n",
            "r.yaml:2: ha.retention: retention keeps no snapshots: set at least one keep_* above 0",
        ),
        (
            "- a list\n",
            "r.yaml:1: expected a mapping of rules (see haprotect rules --show-defaults)",
        ),
        ("ha: [1\n", "r.yaml:2: malformed YAML"),
    ],
)
def test_rules_errors_are_one_line_with_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_rules(text, "r.yaml")
    message = str(err.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_auto_approve_in_the_rules_is_recorded_in_the_policy_s_metadata(tmp_path: Path) -> None:
    assert default_rules().auto_approve is False
    rules = parse_rules("auto_approve: true\n", "rules.yaml")
    assert rules.auto_approve and rules_to_data(rules)["auto_approve"] is True
    now = datetime(2026, 1, 1, tzinfo=UTC)
    approving = generate(topology(web_cluster()), rules, source="file:///t", now=now)
    text = dump_policy(approving)
    assert "auto_approve: true" in text
    assert parse_policy(text, "policy.yaml").metadata.rules.auto_approve is True
    plain = dump_policy(
        generate(topology(web_cluster()), default_rules(), source="file:///t", now=now)
    )
    assert "auto_approve" not in plain
    assert parse_policy(plain, "policy.yaml").metadata.rules.auto_approve is False
    with pytest.raises(PolicyError, match="auto_approve"):
        parse_rules("auto_approve: sometimes\n", "rules.yaml")
