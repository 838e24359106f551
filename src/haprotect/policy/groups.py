"""Consistency groups: the tiers of one application, protected as one set.

Writes are quiesced top-down (the front end first, so that nothing below it
sees new work) and data is restored bottom-up (storage first, so that every
tier starts on top of what it depends on). The restore order is the tiers
sorted so that each comes after its ``depends_on``, keeping the listed order
where the dependencies allow; the quiesce order is its reverse.

Quiescers are generated only where the cluster configuration tells which
one fits: a tier holding a PostgreSQL data set gets a ``postgresql``
quiescer (``CHECKPOINT`` at the cut; its ``dsn`` is filled in at run time
from the data set's primary), and a tier running HAProxy
(``ocf:heartbeat:haproxy``) gets a ``haproxy`` quiescer reading the runtime
API's socket and the frontends from the resource's ``conffile`` (the
agent's default, ``/etc/haproxy/haproxy.cfg``, when it sets none). Every
other tier is left without one, for the administrator to add (an
``http-gate`` in front of a web tier, an ``app-flush`` for an application
that buffers writes).
"""

from __future__ import annotations

from haprotect.model.policy import ConsistencyGroup, Decision, GroupTier, Reason, TierQuiescer
from haprotect.model.topology import Application, Cluster, Resource, Tier

#: Data set kinds whose tier gets a quiescer of the same name by default.
QUIESCED_KINDS = ("postgresql",)
#: The resource agent whose tier gets a ``haproxy`` quiescer.
HAPROXY_AGENT = "ocf:heartbeat:haproxy"


def memberships(cluster: Cluster) -> dict[str, tuple[Application, Tier]]:
    """Data set id -> the application and tier that own it (the first, if several)."""
    found: dict[str, tuple[Application, Tier]] = {}
    for app in cluster.applications:
        for tier in app.tiers:
            for dataset in tier.datasets:
                found.setdefault(dataset, (app, tier))
    return found


def membership_reason(app: Application, tier: Tier) -> Reason:
    tiers = ", ".join(t.name for t in app.tiers)
    return Reason(
        Decision.GROUP,
        f"in consistency group app {app.name!r} with tiers {tiers}; this is tier {tier.name}",
        f"application {app.name}",
    )


def build_groups(cluster: Cluster, protected: set[str]) -> tuple[ConsistencyGroup, ...]:
    """One group per application that owns at least one protected data set."""
    owner = memberships(cluster)
    groups: list[ConsistencyGroup] = []
    for app in cluster.applications:
        names = {t.name for t in app.tiers}
        tiers = tuple(
            _tier(
                cluster,
                t,
                tuple(d for d in t.datasets if d in protected and owner[d][1] is t),
                tuple(d for d in t.depends_on if d in names),
            )
            for t in app.tiers
        )
        if not any(t.datasets for t in tiers):
            continue
        restore = restore_order(tiers)
        groups.append(
            ConsistencyGroup(
                name=app.name,
                cluster=cluster.name,
                tiers=tiers,
                quiesce_order=tuple(reversed(restore)),
                restore_order=restore,
                reasons=_reasons(app, tiers) + _quiesce_reasons(cluster, app, tiers),
            )
        )
    return tuple(groups)


def _tier(
    cluster: Cluster, tier: Tier, datasets: tuple[str, ...], depends_on: tuple[str, ...]
) -> GroupTier:
    kinds = [cluster.dataset(d).kind for d in datasets]
    quiesce = tuple(TierQuiescer(kind=k) for k in QUIESCED_KINDS if k in kinds)
    quiesce += tuple(
        TierQuiescer(kind="haproxy", options={"conffile": r.settings["conffile"]})
        for r in _haproxies(cluster, tier.resources)
    )
    return GroupTier(tier.name, datasets, tier.resources, depends_on, quiesce)


def _haproxies(cluster: Cluster, resources: tuple[str, ...]) -> list[Resource]:
    """The tier's HAProxy resources whose configuration file is known."""
    return [
        r
        for r in cluster.resources
        if r.id in resources and r.agent == HAPROXY_AGENT and r.settings.get("conffile")
    ]


def _quiesce_reasons(
    cluster: Cluster, app: Application, tiers: tuple[GroupTier, ...]
) -> tuple[Reason, ...]:
    reasons = []
    for tier in tiers:
        for proxy in _haproxies(cluster, tier.resources):
            conffile = proxy.settings["conffile"]
            reasons.append(
                Reason(
                    Decision.QUIESCE,
                    f"tier {tier.name} is quiesced by haproxy (new connections wait at "
                    f"HAProxy during the cut) because it runs {HAPROXY_AGENT} resource "
                    f"{proxy.id}; the runtime API socket and frontends are read from its "
                    f"conffile {conffile}",
                    f"resource {proxy.id}",
                )
            )
        for q in tier.quiesce:
            if q.kind == "haproxy":
                continue
            found = [d for d in tier.datasets if cluster.dataset(d).kind == q.kind]
            reasons.append(
                Reason(
                    Decision.QUIESCE,
                    f"tier {tier.name} is quiesced by {q.kind} (CHECKPOINT at the cut) "
                    f"because it holds the {q.kind} data set {', '.join(found)}",
                    f"dataset {found[0]}",
                )
            )
    return tuple(reasons)


def restore_order(tiers: tuple[GroupTier, ...]) -> tuple[str, ...]:
    """Each tier after those it depends on; listed order breaks ties and cycles."""
    done: list[str] = []
    pending = list(tiers)
    while pending:
        ready = next((t for t in pending if all(d in done for d in t.depends_on)), pending[0])
        done.append(ready.name)
        pending.remove(ready)
    return tuple(done)


def _reasons(app: Application, tiers: tuple[GroupTier, ...]) -> tuple[Reason, ...]:
    source = f"application {app.name}"
    edges = "; ".join(f"{t.name} on {', '.join(t.depends_on)}" for t in tiers if t.depends_on)
    depends = f" ({edges})" if edges else ""
    return (
        Reason(
            Decision.GROUP,
            f"the cluster runs these tiers as application {app.name!r}; they are backed up "
            "as one consistent set",
            source,
        ),
        Reason(
            Decision.QUIESCE_ORDER,
            f"top-down: a tier is quiesced before the tiers it depends on{depends}",
            source,
        ),
        Reason(
            Decision.RESTORE_ORDER,
            f"bottom-up: a tier is restored after the tiers it depends on{depends}",
            source,
        ),
    )
