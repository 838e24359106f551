"""A backup plan from a policy and the cluster as it is now, each item with its mover.

What ``haprotect backup`` does before it runs anything: discover the cluster
again from the policy's source (so the plan follows a failover without the
policy being edited), then build the plan with each item's mover and that
mover's health check of the candidate nodes (:func:`haprotect.plan.build`).
"""

from __future__ import annotations

from collections.abc import Sequence

from haprotect.model.inventory import Inventory
from haprotect.model.plan import Plan, PlanItem, SourceHealth
from haprotect.model.policy import Policy
from haprotect.movers import get_mover, mover_name_for
from haprotect.plan import build
from haprotect.plan.build import ItemProbe
from haprotect.sources import DiscoverOptions, discover


def probe_with(inventory: Inventory) -> ItemProbe:
    """The movers' health checks, as the plan takes them."""

    def probe(item: PlanItem, node: str) -> SourceHealth:
        if item.mover is None:
            return SourceHealth(node, False, "no mover")
        return get_mover(item.mover).probe(item, node, inventory)

    return probe


def plan_backup(
    policy: Policy,
    inventory: Inventory,
    *,
    use_cli: bool = True,
    applications: Sequence[str] = (),
    datasets: Sequence[str] = (),
) -> Plan:
    """The plan of a backup run of ``policy`` now (``applications``/``datasets``: only those)."""
    topology = discover(policy.metadata.source, DiscoverOptions(use_cli=use_cli))
    return build(
        policy,
        topology,
        inventory,
        mover_for=mover_name_for,
        probe=probe_with(inventory),
        applications=applications,
        datasets=datasets,
    )
