"""Compliance presets: named retention floors a rules file can ask for.

A preset only ever raises retention (``keep_* = max(rule, floor)``), so
presets combine by taking the strictest of them, and each raise is recorded
as a reason naming the preset and the regulation it follows. The floors are
commonly cited minimums, not legal advice.

GDPR has no preset on purpose: it sets no minimum retention, and its storage
limitation principle is a maximum that depends on each data set's purpose.
Set those limits per data set in the rules file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from haprotect.model.policy import Decision, Reason, Retention


@dataclass(frozen=True, slots=True)
class Preset:
    """A compliance preset: its retention floor, and the regulation it follows (``basis``)."""

    name: str
    floor: Retention
    basis: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "hipaa",
            Retention(keep_monthly=12, keep_yearly=6),
            "HIPAA 45 CFR 164.316(b)(2): keep six years",
        ),
        Preset(
            "sox",
            Retention(keep_monthly=12, keep_yearly=7),
            "SOX / SEC Rule 2-06 of Regulation S-X: keep audit records seven years",
        ),
        Preset(
            "pci-dss",
            Retention(keep_weekly=13, keep_monthly=12),
            "PCI DSS v4.0 10.5.1: keep one year, the last three months at hand",
        ),
    )
}


def known() -> str:
    return ", ".join(sorted(PRESETS))


def apply_presets(
    retention: Retention, names: tuple[str, ...]
) -> tuple[Retention, tuple[Reason, ...]]:
    """Raise ``retention`` to every preset's floor, with one reason per preset.

    ``names`` must be known presets (rules validation guarantees it).
    """
    reasons: list[Reason] = []
    for name in dict.fromkeys(names):
        preset = PRESETS[name]
        raised: list[str] = []
        for key in Retention.FIELDS:
            have, floor = getattr(retention, key), getattr(preset.floor, key)
            if floor > have:
                retention = replace(retention, **{key: floor})
                raised.append(f"{key} {have} -> {floor}")
        change = "raised " + ", ".join(raised) if raised else "already met"
        because = f"{change} ({preset.basis})"
        reasons.append(Reason(Decision.RETENTION, because, f"preset {name}"))
    return retention, tuple(reasons)
