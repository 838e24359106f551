"""The decisions for one data set, each with the reason it was taken.

In order: whether it is protected at all (HA data is; other data only when
the rules include it), then priority, schedule, repository, retention and
copies from the rule of its class (``ha`` or ``non_ha``) unless a per-data-set
rule overrides them, compliance presets on retention, and the node to read
from, which follows how the cluster keeps the data: replicated data from a
standby, shared failover storage from the node that has it, local data from
its one node.

Each data set is decided on its own here; :mod:`haprotect.policy.layers` then
looks at the data sets that lie on others.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from haprotect.errors import PolicyError, located
from haprotect.model.policy import (
    Decision,
    Excluded,
    Item,
    ReadFrom,
    ReadRole,
    Reason,
    What,
)
from haprotect.model.topology import Application, Cluster, DataSet, Replication, Tier
from haprotect.policy.groups import membership_reason
from haprotect.policy.presets import apply_presets
from haprotect.policy.rules import DatasetRule, Rules
from haprotect.redact import redact_value

T = TypeVar("T")


def decide(
    cluster: Cluster,
    ds: DataSet,
    rules: Rules,
    member: tuple[Application, Tier] | None = None,
) -> Item | Excluded:
    source = f"dataset {ds.id}"
    found = rules.for_dataset(cluster.name, ds.id)
    key, override = found if found is not None else ("", DatasetRule())
    nature = _nature(ds)

    if override.include is not None:
        include = override.include
        value = str(include).lower()
        why = f"{nature}; {rules.provenance(f'datasets.{key}.include', value)}"
    elif ds.ha:
        include, why = True, nature
    else:
        include = rules.include_non_ha
        why = f"{nature}; {rules.provenance('include_non_ha', str(include).lower())}"
    if not include:
        return Excluded(cluster.name, ds.id, ds.kind, why, source)

    cls_name, cls = ("ha", rules.ha) if ds.ha else ("non_ha", rules.non_ha)
    label = "HA data" if ds.ha else "non-HA data"

    def choose(field: str, mine: T | None, theirs: T, lead: str = label) -> tuple[T, Reason]:
        decision = Decision(field)
        if mine is not None:
            return mine, Reason(decision, rules.provenance(f"datasets.{key}.{field}"), source)
        return theirs, Reason(
            decision, f"{lead}; {rules.provenance(f'{cls_name}.{field}')}", source
        )

    priority, r_priority = choose("priority", override.priority, cls.priority, nature)
    schedule, r_schedule = choose("schedule", override.schedule, cls.schedule)
    copies, r_copies = choose("copies", override.copies, cls.copies)
    if override.where is None and cls.where is None:
        where = rules.where
        r_where = Reason(Decision.WHERE, f"default repository; {rules.provenance('where')}", source)
    else:
        where, r_where = choose("where", override.where, cls.where or rules.where)

    retention = cls.retention
    reasons_retention = [
        Reason(Decision.RETENTION, f"{label}; {rules.provenance(f'{cls_name}.retention')}", source)
    ]
    if override.retention:
        retention = replace(retention, **override.retention)
        changed = ", ".join(f"{k} {v}" for k, v in override.retention.items())
        prov = rules.provenance(f"datasets.{key}.retention")
        reasons_retention.append(Reason(Decision.RETENTION, f"{changed}: {prov}", source))
        if not any(retention.as_dict().values()):
            raise PolicyError(
                located(
                    rules.origin or "rules",
                    None,
                    f"datasets.{key}.retention: dataset {ds.id} would keep no snapshots",
                )
            )
    retention, preset_reasons = apply_presets(retention, (*rules.presets, *override.presets))

    read_from, r_read = _read_from(cluster, ds, rules)
    reasons = [
        Reason(Decision.INCLUDE, why, source),
        r_priority,
        r_schedule,
        r_where,
        *reasons_retention,
        *preset_reasons,
        r_copies,
        r_read,
    ]
    if member is not None:
        reasons.append(membership_reason(*member))
    return Item(
        cluster=cluster.name,
        dataset=ds.id,
        what=What(
            kind=ds.kind,
            resource=ds.resource,
            ha=ds.ha,
            replication=ds.replication,
            location={k: redact_value(k, v) for k, v in ds.location.items()},
            backing=ds.backing,
        ),
        schedule=schedule,
        where=where,
        retention=retention,
        copies=copies,
        priority=priority,
        read_from=read_from,
        reasons=tuple(reasons),
    )


def _nature(ds: DataSet) -> str:
    detail = f" ({'; '.join(ds.why)})" if ds.why else ""
    return f"dataset {ds.id} is {'HA' if ds.ha else 'not HA'}{detail}"


def _read_from(cluster: Cluster, ds: DataSet, rules: Rules) -> tuple[ReadFrom, Reason]:
    source = f"dataset {ds.id}"
    offline = {n.name for n in cluster.nodes if not n.online}
    here = (ds.primary,) if ds.primary else ()
    if ds.replication is Replication.SHARED:
        now = f"now {ds.primary}" if ds.primary else "no node has it now"
        because = f"shared failover storage: read on the node that has it mounted ({now})"
        return ReadFrom(ReadRole.ACTIVE, here), Reason(Decision.READ_FROM, because, source)
    if ds.replication is Replication.LOCAL:
        on = f"on {ds.primary}" if ds.primary else "not running on any node now"
        because = f"local data: read on the one node that holds it ({on})"
        return ReadFrom(ReadRole.LOCAL, here), Reason(Decision.READ_FROM, because, source)

    rule = rules.replicated
    primary = f"{ds.primary} is primary" if ds.primary else "no node is primary now"
    prov = rules.provenance("replicated.read_from", rule.read_from.value)
    if rule.read_from is ReadRole.PRIMARY:
        because = f"replicated data; {primary}; {prov}"
        return ReadFrom(ReadRole.PRIMARY, here), Reason(Decision.READ_FROM, because, source)
    standbys = tuple(s for s in ds.standbys if s not in offline)
    down = [s for s in ds.standbys if s in offline]
    state = f"standby {', '.join(standbys)}" if standbys else "no standby is online now"
    if down:
        state += f" ({', '.join(down)} offline)"
    because = (
        f"replicated data; {primary}, {state}: a standby is read so the primary does no "
        f"backup work ({prov}); a standby more than {rule.max_lag_seconds}s behind is "
        f"skipped, and with none left: {rule.fallback.value}"
    )
    read = ReadFrom(ReadRole.STANDBY, standbys, rule.max_lag_seconds, rule.fallback)
    return read, Reason(Decision.READ_FROM, because, source)
