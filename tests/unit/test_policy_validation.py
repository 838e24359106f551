"""Validation errors are one line naming file, line and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from haprotect.errors import PolicyError
from haprotect.policy import default_rules, dump_policy, generate, load_policy, parse_policy
from haprotect.testing.builders import topology, web_cluster

NOW = datetime(2025, 3, 1, 12, 30, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def text() -> str:
    policy = generate(topology(web_cluster()), default_rules(), source="pacemaker://", now=NOW)
    return dump_policy(policy)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def replace_nth(text: str, old: str, new: str, occurrence: int) -> str:
    lines = text.splitlines(keepends=True)
    seen = 0
    for n, line in enumerate(lines):
        if old in line:
            seen += 1
            if seen == occurrence:
                lines[n] = line.replace(old, new)
                return "".join(lines)
    raise AssertionError(f"{old!r} occurs fewer than {occurrence} times")


def error(text: str) -> str:
    with pytest.raises(PolicyError) as err:
        parse_policy(text, "p.yaml")
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_cron_names_line_and_field(text: str) -> None:
    bad = replace_nth(text, "schedule: 0 * * * *", "schedule: 61 * * * *", 2)
    line = line_of(bad, "schedule: 61")
    assert (
        error(bad) == f"p.yaml:{line}: spec.items[1].schedule: invalid cron expression '61 * * * *'"
    )


def test_unknown_field_names_its_line(text: str) -> None:
    bad = replace_nth(text, "    copies: 2\n", "    copies: 2\n    copys: 3\n", 1)
    line = line_of(bad, "copys: 3")
    assert error(bad) == f"p.yaml:{line}: spec.items[0].copys: unknown field"


def test_wrong_type_names_its_line(text: str) -> None:
    bad = replace_nth(text, "copies: 2", "copies: two", 2)
    line = line_of(bad, "copies: two")
    assert error(bad).startswith(
        f"p.yaml:{line}: spec.items[1].copies: input should be a valid integer"
    )


def test_quoted_number_is_a_type_error_not_coerced(text: str) -> None:
    bad = replace_nth(text, "copies: 2", "copies: '2'", 1)
    assert "spec.items[0].copies: input should be a valid integer" in error(bad)


def test_bad_enum_value(text: str) -> None:
    bad = replace_nth(text, "priority: high", "priority: urgent", 1)
    line = line_of(bad, "priority: urgent")
    assert error(bad) == (
        f"p.yaml:{line}: spec.items[0].priority: "
        "input should be 'critical', 'high', 'normal' or 'low'"
    )


def test_missing_field_points_at_its_parent(text: str) -> None:
    bad = replace_nth(text, "    copies: 2\n", "", 1)
    line = line_of(bad, "- dataset: fs_data")
    assert error(bad) == f"p.yaml:{line}: spec.items[0].copies: field required"


def test_malformed_yaml_names_the_line() -> None:
    message = error("apiVersion: haprotect/v1\nkind: Policy\nmetadata: {name: [x\n")
    assert message.startswith("p.yaml:4: malformed YAML:")


def test_duplicate_key_is_an_error(text: str) -> None:
    bad = replace_nth(text, "    copies: 2\n", "    copies: 2\n    copies: 3\n", 1)
    line = line_of(bad, "copies: 3")
    assert error(bad).startswith(f"p.yaml:{line}: spec.items[0].copies: duplicate key")


def test_wrong_api_version(text: str) -> None:
    bad = text.replace("apiVersion: haprotect/v1", "apiVersion: haprotect/v2")
    line = line_of(bad, "apiVersion")
    assert error(bad) == f"p.yaml:{line}: apiVersion: input should be 'haprotect/v1'"


def test_empty_and_non_mapping_documents() -> None:
    assert error("# nothing\n") == "p.yaml: empty document"
    assert error("- 1\n").startswith("p.yaml:1: expected a mapping")


def test_standby_read_needs_a_lag_limit(text: str) -> None:
    bad = replace_nth(text, "      max_lag_seconds: 300\n", "", 1)
    message = error(bad)
    assert "spec.items[0].read_from: a standby read needs max_lag_seconds and fallback" in message


def test_lag_limit_only_for_standby_reads(text: str) -> None:
    bad = replace_nth(text, "      role: active\n", "      role: active\n      fallback: wait\n", 1)
    assert "spec.items[1].read_from: max_lag_seconds and fallback apply to standby reads" in error(
        bad
    )


def test_bad_fingerprint(text: str) -> None:
    bad = text.replace("topology_fingerprint: sha256:", "topology_fingerprint: md5:")
    line = line_of(bad, "topology_fingerprint")
    assert error(bad).startswith(f"p.yaml:{line}: metadata.topology_fingerprint: ")


def test_duplicate_item_is_reported_at_the_second(text: str) -> None:
    bad = replace_nth(text, "- dataset: pg_data", "- dataset: fs_data", 1)
    line = line_of(bad, "- dataset: fs_data", 2)
    assert error(bad).startswith(
        f"p.yaml:{line}: spec.items[1].dataset: dataset 'fs_data' of cluster 'c1' is already "
        "spec.items[0]"
    )


def test_restore_order_must_follow_depends_on(text: str) -> None:
    bad = text.replace(
        "restore_order: [storage, database, frontend]",
        "restore_order: [database, storage, frontend]",
    )
    line = line_of(bad, "restore_order")
    assert error(bad) == (
        f"p.yaml:{line}: spec.groups[0].restore_order: 'database' depends on 'storage', "
        "so it is restored after it"
    )


def test_quiesce_order_must_list_each_tier_once(text: str) -> None:
    bad = text.replace(
        "quiesce_order: [frontend, database, storage]", "quiesce_order: [frontend, storage]"
    )
    line = line_of(bad, "quiesce_order")
    assert error(bad) == (
        f"p.yaml:{line}: spec.groups[0].quiesce_order: must list each tier once: "
        "storage, database, frontend"
    )


def test_group_member_must_be_an_item(text: str) -> None:
    bad = text.replace("datasets: [fs_data]", "datasets: [fs_data, scratch]")
    line = line_of(bad, "datasets: [fs_data, scratch]")
    assert error(bad) == (
        f"p.yaml:{line}: spec.groups[0].tiers[0].datasets[1]: "
        "dataset 'scratch' is not an item of the policy"
    )


def test_item_cluster_must_be_in_metadata(text: str) -> None:
    bad = replace_nth(text, "    cluster: c1\n", "    cluster: c9\n", 1)
    assert "spec.items[0].cluster: cluster 'c9' is not in metadata.clusters (c1)" in error(bad)


def test_item_cannot_lie_on_itself(text: str) -> None:
    bad = replace_nth(
        text, "        fstype: ext4\n", "        fstype: ext4\n      backing: fs_data\n", 1
    )
    line = line_of(bad, "backing: fs_data")
    assert error(bad) == (
        f"p.yaml:{line}: spec.items[0].what.backing: dataset 'fs_data' cannot lie on itself"
    )
    fine = replace_nth(
        text, "        fstype: ext4\n", "        fstype: ext4\n      backing: r0\n", 1
    )
    assert parse_policy(fine, "p.yaml").item("fs_data").what.backing == "r0"


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "missing.yaml")
    assert str(err.value) == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("0 0 30 2 *", "February has no day 30"),
        ("0 0 31 4 *", "April has no day 31"),
        ("15 3 31 2,4,6 *", "February, April and June have no day 31"),
        ("0 0 30,31 2 *", "February has no day 30 or 31"),
    ],
)
def test_a_schedule_that_never_fires_is_refused_with_why(
    text: str, schedule: str, why: str
) -> None:
    bad = replace_nth(text, "schedule: 0 * * * *", f"schedule: {schedule}", 1)
    line = line_of(bad, f"schedule: {schedule}")
    assert error(bad) == (
        f"p.yaml:{line}: spec.items[0].schedule: cron expression {schedule!r} never fires: {why}"
    )


@pytest.mark.parametrize("schedule", ["0 0 29 2 *", "0 0 30 2 1", "0 0 31 * *", "@yearly"])
def test_schedules_that_fire_rarely_are_fine(text: str, schedule: str) -> None:
    fine = replace_nth(text, "schedule: 0 * * * *", f"schedule: '{schedule}'", 1)
    assert parse_policy(fine, "p.yaml").items[0].schedule == schedule


def test_a_tier_that_depends_on_itself_is_a_cycle(text: str) -> None:
    bad = text.replace("depends_on: [storage]", "depends_on: [storage, database]")
    line = line_of(bad, "depends_on: [storage, database]")
    assert error(bad) == (
        f"p.yaml:{line}: spec.groups[0].tiers[1].depends_on[1]: dependency cycle: "
        "database -> database (a tier that depends on itself)"
    )


def test_a_dependency_cycle_is_named_as_a_cycle_not_as_an_order(text: str) -> None:
    bad = text.replace("depends_on: []", "depends_on: [frontend]")
    line = line_of(bad, "depends_on: [frontend]")
    message = error(bad)
    assert message == (
        f"p.yaml:{line}: spec.groups[0].tiers[0].depends_on[0]: dependency cycle: "
        "storage -> frontend -> database -> storage"
    )


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "copies: 2",
            "copies: 101",
            "spec.items[0].copies",
            "input should be less than or equal to 100",
        ),
        (
            "keep_daily: 14",
            "keep_daily: 100001",
            "spec.items[0].retention.keep_daily",
            "input should be less than or equal to 100000",
        ),
        (
            "max_lag_seconds: 300",
            "max_lag_seconds: 31622401",
            "spec.items[0].read_from.max_lag_seconds",
            "input should be less than or equal to 31622400",
        ),
        (
            "lease_seconds: 120.0",
            "lease_seconds: .inf",
            "spec.groups[0].tiers[1].quiesce[0].lease_seconds",
            "input should be a finite number",
        ),
        (
            "timeout_seconds: 30.0",
            "timeout_seconds: 604801",
            "spec.groups[0].tiers[1].quiesce[0].timeout_seconds",
            "input should be less than or equal to 604800",
        ),
    ],
)
def test_counts_and_durations_have_a_maximum(
    text: str, old: str, new: str, field: str, message: str
) -> None:
    bad = replace_nth(text, old, new, 1)
    assert error(bad).startswith(f"p.yaml:{line_of(bad, new)}: {field}: {message}")


def test_an_absurd_count_is_one_line_not_a_number(text: str) -> None:
    bad = replace_nth(text, "copies: 2", "copies: 10000000000000000000000000000", 1)
    assert error(bad) == (
        f"p.yaml:{line_of(bad, 'copies: 1000')}: spec.items[0].copies: integer out of range: "
        "integers have 64 bits, up to 9223372036854775807 "
        "(quote a value meant as text)"
    )


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("ftp://x", "unknown scheme ftp:// (known: file://, memory://, s3://)"),
        ("file:///dev/null", "/dev/null is under /dev, not a directory to write to"),
        ("/proc/1/x", "/proc/1/x is under /proc, not a directory to write to"),
        ("file:///sys/kernel", "/sys/kernel is under /sys, not a directory to write to"),
    ],
)
def test_a_repository_must_be_a_known_store_and_no_device(
    text: str, where: str, message: str
) -> None:
    bad = text.replace("repository: file:///var/lib/haprotect/repository", f"repository: {where}")
    line = line_of(bad, f"repository: {where}")
    assert error(bad) == f"p.yaml:{line}: spec.repository: repository {where!r}: {message}"


def test_a_repository_that_leads_to_a_device_or_file_is_refused(text: str, tmp_path: Path) -> None:
    (tmp_path / "null").symlink_to("/dev/null")
    (tmp_path / "file").write_text("x")
    for name, message in (
        ("null", f"{tmp_path / 'null'} (/dev/null) is under /dev, not a directory to write to"),
        ("file", f"{tmp_path / 'file'} is a file, not a directory"),
    ):
        where = f"file://{tmp_path / name}"
        bad = replace_nth(text, "    copies: 2\n", f"    copies: 2\n    where: {where}\n", 1)
        assert error(bad) == (
            f"p.yaml:{line_of(bad, 'where: file')}: spec.items[0].where: "
            f"repository {where!r}: {message}"
        )
    fine = text.replace(
        "repository: file:///var/lib/haprotect/repository",
        f"repository: {tmp_path / 'new'}",
    )
    assert parse_policy(fine, "p.yaml").repository == str(tmp_path / "new")
