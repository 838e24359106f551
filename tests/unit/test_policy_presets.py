"""Compliance presets raise retention, never lower it, and say why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from haprotect.errors import PolicyError
from haprotect.model.policy import Decision, Retention
from haprotect.policy import generate, parse_rules
from haprotect.policy.presets import PRESETS, apply_presets
from haprotect.testing.builders import topology, web_cluster


def test_hipaa_keeps_six_years_and_a_year_of_months() -> None:
    kept, reasons = apply_presets(Retention(keep_daily=7, keep_monthly=3), ("hipaa",))
    assert kept == Retention(keep_daily=7, keep_monthly=12, keep_yearly=6)
    (reason,) = reasons
    assert reason.decision is Decision.RETENTION
    assert reason.source == "preset hipaa"
    assert "keep_monthly 3 -> 12" in reason.because
    assert "keep_yearly 0 -> 6" in reason.because
    assert "164.316" in reason.because


def test_sox_keeps_seven_years() -> None:
    kept, _ = apply_presets(Retention(keep_daily=7), ("sox",))
    assert kept.keep_yearly == 7


def test_presets_combine_by_taking_the_strictest() -> None:
    kept, reasons = apply_presets(Retention(keep_daily=7), ("hipaa", "sox", "pci-dss"))
    assert kept == Retention(keep_daily=7, keep_weekly=13, keep_monthly=12, keep_yearly=7)
    assert [r.source for r in reasons] == ["preset hipaa", "preset sox", "preset pci-dss"]


def test_a_preset_never_lowers_retention_and_says_it_is_met() -> None:
    generous = Retention(keep_daily=90, keep_monthly=24, keep_yearly=10)
    kept, (reason,) = apply_presets(generous, ("hipaa",))
    assert kept == generous
    assert reason.because.startswith("already met")


def test_repeated_preset_counts_once() -> None:
    _, reasons = apply_presets(Retention(keep_daily=1), ("sox", "sox"))
    assert len(reasons) == 1


def test_every_preset_raises_something_above_zero() -> None:
    for preset in PRESETS.values():
        assert any(preset.floor.as_dict().values()), preset.name


def test_rules_file_presets_raise_every_protected_item() -> None:
    rules = parse_rules("presets: [hipaa]\ninclude_non_ha: true\n", "r.yaml")
    policy = generate(
        topology(web_cluster()), rules, source="x", now=datetime(2025, 1, 1, tzinfo=UTC)
    )
    for item in policy.items:
        assert item.retention.keep_yearly >= 6
        assert item.retention.keep_monthly >= 12
        assert any(r.source == "preset hipaa" for r in item.reasons)


def test_per_dataset_presets_add_to_the_global_ones() -> None:
    rules = parse_rules("presets: [hipaa]\ndatasets: {pg_data: {presets: [sox]}}\n", "r.yaml")
    policy = generate(
        topology(web_cluster()), rules, source="x", now=datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert policy.item("pg_data").retention.keep_yearly == 7
    assert policy.item("fs_data").retention.keep_yearly == 6


def test_unknown_preset_is_an_error_at_its_line() -> None:
    with pytest.raises(PolicyError) as err:
        parse_rules("where: /srv/b\npresets:\n  - hipaa\n  - hippa\n", "r.yaml")
    assert str(err.value) == (
        "r.yaml:4: presets[1]: unknown preset 'hippa' (known: hipaa, pci-dss, sox)"
    )
