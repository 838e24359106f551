"""Rules files: the packaged defaults, an administrator's overrides, merged.

A rules file holds only the keys it changes. It is merged over the defaults
(mappings key by key, anything else replaced), the result is validated, and
errors are reported at the line of the rules file that caused them.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from haprotect.errors import PolicyError
from haprotect.model.policy import Fallback, Priority, ReadRole, Retention
from haprotect.policy.fields import (
    Copies,
    Cron,
    FallbackName,
    Keep,
    LagSeconds,
    PriorityName,
    RetentionDoc,
    Strict,
    Where,
)
from haprotect.policy.presets import PRESETS, known
from haprotect.policy.rules import ClassRule, DatasetRule, ReplicatedRule, Rules
from haprotect.yamlsource import YamlDocument, parse_yaml, read_yaml

DEFAULTS_NAME = "defaults.yaml"


def _check_preset(name: str) -> str:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {known()})")
    return name


PresetName = Annotated[str, AfterValidator(_check_preset)]


class ClassRuleDoc(Strict):
    priority: PriorityName
    schedule: Cron
    copies: Copies
    retention: RetentionDoc
    where: Where | None = None


class ReplicatedDoc(Strict):
    read_from: Literal["standby", "primary"]
    max_lag_seconds: LagSeconds
    fallback: FallbackName


class RetentionOverrideDoc(Strict):
    """A data set's retention exception in a rules file: only the keys it sets change."""

    keep_last: Keep | None = None
    keep_hourly: Keep | None = None
    keep_daily: Keep | None = None
    keep_weekly: Keep | None = None
    keep_monthly: Keep | None = None
    keep_yearly: Keep | None = None


class DatasetRuleDoc(Strict):
    """A data set's exception in a rules file (``datasets:``): only the keys it sets change."""

    include: bool | None = None
    priority: PriorityName | None = None
    schedule: Cron | None = None
    copies: Copies | None = None
    where: Where | None = None
    retention: RetentionOverrideDoc = RetentionOverrideDoc()
    presets: list[PresetName] = Field(default_factory=list)


class RulesDoc(Strict):
    """A rules file merged over the defaults, as validated: every key is present."""

    apiVersion: Literal["haprotect/v1"]
    kind: Literal["Rules"]
    where: Where
    include_non_ha: bool
    protect_lower_layers: bool
    auto_approve: bool = False
    presets: list[PresetName]
    ha: ClassRuleDoc
    non_ha: ClassRuleDoc
    replicated: ReplicatedDoc
    datasets: dict[str, DatasetRuleDoc]


def defaults_text() -> str:
    """The packaged defaults, comments included."""
    return files("haprotect.policy").joinpath(DEFAULTS_NAME).read_text(encoding="utf-8")


@cache
def default_rules() -> Rules:
    """The built-in rules (``haprotect rules --defaults`` prints them)."""
    return _build(_defaults_document(), None)


def _defaults_document() -> YamlDocument:
    return parse_yaml(defaults_text(), DEFAULTS_NAME, error=PolicyError)


def load_rules(path: Path | None) -> Rules:
    """The defaults, overridden by the rules file at ``path`` when given."""
    if path is None:
        return default_rules()
    return _build(read_yaml(path, error=PolicyError), str(path))


def parse_rules(text: str, origin: str) -> Rules:
    """The defaults, overridden by the rules in ``text`` (``origin`` names it)."""
    return _build(parse_yaml(text, origin, error=PolicyError), origin)


def _build(doc: YamlDocument, origin: str | None) -> Rules:
    """Merge ``doc`` over the defaults, validate, and report errors at ``doc``'s lines.

    An empty rules file (nothing but comments) changes nothing.
    """
    overrides = {} if doc.data is None else doc.data
    if not isinstance(overrides, dict):
        raise doc.error_at((), "expected a mapping of rules (see haprotect rules --show-defaults)")
    merged = _merge(_defaults_document().data, overrides) if origin is not None else overrides
    rules = replace(doc, data=merged).validate(RulesDoc)
    return Rules(
        where=rules.where,
        include_non_ha=rules.include_non_ha,
        presets=tuple(rules.presets),
        ha=_class_rule(rules.ha),
        non_ha=_class_rule(rules.non_ha),
        replicated=ReplicatedRule(
            ReadRole(rules.replicated.read_from),
            rules.replicated.max_lag_seconds,
            Fallback(rules.replicated.fallback),
        ),
        datasets={key: _dataset_rule(d) for key, d in rules.datasets.items()},
        protect_lower_layers=rules.protect_lower_layers,
        auto_approve=rules.auto_approve,
        origin=origin,
        overridden=frozenset(_leaves(overrides, "")) if origin is not None else frozenset(),
    )


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return override


def _leaves(data: dict[str, Any], prefix: str) -> list[str]:
    out: list[str] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(_leaves(value, path + "."))
        else:
            out.append(path)
    return out


def _class_rule(doc: ClassRuleDoc) -> ClassRule:
    return ClassRule(
        priority=Priority(doc.priority),
        schedule=doc.schedule,
        copies=doc.copies,
        retention=Retention(**doc.retention.model_dump()),
        where=doc.where,
    )


def _dataset_rule(doc: DatasetRuleDoc) -> DatasetRule:
    return DatasetRule(
        include=doc.include,
        priority=Priority(doc.priority) if doc.priority else None,
        schedule=doc.schedule,
        copies=doc.copies,
        where=doc.where,
        retention={k: v for k, v in doc.retention.model_dump().items() if v is not None},
        presets=tuple(doc.presets),
    )


def rules_to_data(rules: Rules) -> dict[str, Any]:
    """The effective rules in rules-file form (what ``haprotect rules FILE`` prints)."""
    return {
        "apiVersion": "haprotect/v1",
        "kind": "Rules",
        "where": rules.where,
        "include_non_ha": rules.include_non_ha,
        "protect_lower_layers": rules.protect_lower_layers,
        "auto_approve": rules.auto_approve,
        "presets": list(rules.presets),
        "ha": _class_data(rules.ha),
        "non_ha": _class_data(rules.non_ha),
        "replicated": {
            "read_from": rules.replicated.read_from.value,
            "max_lag_seconds": rules.replicated.max_lag_seconds,
            "fallback": rules.replicated.fallback.value,
        },
        "datasets": {key: _dataset_data(d) for key, d in rules.datasets.items()},
    }


def _class_data(rule: ClassRule) -> dict[str, Any]:
    data: dict[str, Any] = {
        "priority": rule.priority.value,
        "schedule": rule.schedule,
        "copies": rule.copies,
        "retention": rule.retention.as_dict(),
    }
    if rule.where is not None:
        data["where"] = rule.where
    return data


def _dataset_data(rule: DatasetRule) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in ("include", "schedule", "copies", "where"):
        if getattr(rule, key) is not None:
            data[key] = getattr(rule, key)
    if rule.priority is not None:
        data["priority"] = rule.priority.value
    if rule.retention:
        data["retention"] = dict(rule.retention)
    if rule.presets:
        data["presets"] = list(rule.presets)
    return data
