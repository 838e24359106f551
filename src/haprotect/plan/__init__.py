"""Plans: from a policy and the cluster as it is now, what a run does.

Terms (the types are in :mod:`haprotect.model.plan`):

plan
    Per consistency group, the tiers with their data sets in quiesce order
    (top-down) and restore order (bottom-up); per data set the mover, the
    node to read from and the location there, each choice with its reason.
inventory
    How to reach each node and where its data is when that differs by node
    (:mod:`haprotect.plan.inventory`, docs/engine.md).
source choice
    ``read_from`` applied now: a healthy standby within the lag limit, else
    the policy's fallback (:mod:`haprotect.plan.choose`).
restore plan
    Which tiers of a snapshot set go where, bottom-up
    (:mod:`haprotect.plan.restore`).

Modules: ``graph`` (tier orders), ``choose`` (source node), ``build`` (the
backup plan), ``restore`` (the restore plan), ``inventory`` (the file).
"""

from __future__ import annotations

from haprotect.plan.build import build
from haprotect.plan.inventory import default_inventory, load_inventory, parse_inventory
from haprotect.plan.restore import plan_restore

__all__ = ["build", "default_inventory", "load_inventory", "parse_inventory", "plan_restore"]
