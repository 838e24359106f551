"""haprotect: HA-aware data protection.

Discover what a high-availability cluster makes highly available, generate an
explained backup policy for it, back its applications up as consistent
snapshot sets and restore them in dependency order. The names below are the
public API for scripts; the command line (``haprotect --help``) is built on
the same ones. A backup, step by step::

    from datetime import UTC, datetime
    import haprotect

    url = "pacemaker+file:///var/lib/pacemaker/cib/cib.xml"
    topology = haprotect.discover(url)
    policy = haprotect.generate(
        topology, haprotect.default_rules(), source=url, now=datetime.now(UTC)
    )
    inventory = haprotect.load_inventory(None)          # or a file: how to reach the nodes
    plan = haprotect.plan_backup(policy, inventory)     # the cluster as it is now
    repo = haprotect.open_repository(haprotect.open_store("file:///srv/backup/repo"), passphrase)
    result = haprotect.run_backup(plan, repo, haprotect.ListReporter())
    assert result.status is haprotect.Status.COMPLETED, result.issues

and a restore of the latest complete set of an application::

    chosen = haprotect.find_set(haprotect.list_sets(repo), "latest", "shop")
    restore = haprotect.plan_restore(chosen, inventory, to=Path("/tmp/restored"))
    result = haprotect.run_restore(restore, repo, haprotect.ListReporter())

Every error a user can cause is a :class:`HaprotectError` with a one-line
message, an exit code and a hint. Nothing is imported until it is used:
``import haprotect`` costs nothing, and the command line's help loads no
engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from haprotect.engine import (
        ListReporter,
        NullReporter,
        Reporter,
        find_set,
        list_sets,
        run_backup,
        run_restore,
    )
    from haprotect.engine.planning import plan_backup
    from haprotect.errors import HaprotectError
    from haprotect.model.policy import Policy
    from haprotect.model.result import Result, Status
    from haprotect.model.topology import Topology
    from haprotect.plan import load_inventory, plan_restore
    from haprotect.policy import (
        default_rules,
        dump_policy,
        explain,
        generate,
        load_policy,
        load_rules,
    )
    from haprotect.repo import Repository, open_repository
    from haprotect.sources import discover
    from haprotect.storage import open_store

__version__ = "0.1.0"

_LAZY = {
    "discover": "haprotect.sources",
    "Topology": "haprotect.model.topology",
    "default_rules": "haprotect.policy",
    "load_rules": "haprotect.policy",
    "generate": "haprotect.policy",
    "explain": "haprotect.policy",
    "dump_policy": "haprotect.policy",
    "load_policy": "haprotect.policy",
    "Policy": "haprotect.model.policy",
    "load_inventory": "haprotect.plan",
    "plan_backup": "haprotect.engine.planning",
    "plan_restore": "haprotect.plan",
    "open_store": "haprotect.storage",
    "open_repository": "haprotect.repo",
    "Repository": "haprotect.repo",
    "run_backup": "haprotect.engine",
    "run_restore": "haprotect.engine",
    "list_sets": "haprotect.engine",
    "find_set": "haprotect.engine",
    "Reporter": "haprotect.engine",
    "ListReporter": "haprotect.engine",
    "NullReporter": "haprotect.engine",
    "Result": "haprotect.model.result",
    "Status": "haprotect.model.result",
    "HaprotectError": "haprotect.errors",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "HaprotectError",
    "ListReporter",
    "NullReporter",
    "Policy",
    "Reporter",
    "Repository",
    "Result",
    "Status",
    "Topology",
    "__version__",
    "default_rules",
    "discover",
    "dump_policy",
    "explain",
    "find_set",
    "generate",
    "list_sets",
    "load_inventory",
    "load_policy",
    "load_rules",
    "open_repository",
    "open_store",
    "plan_backup",
    "plan_restore",
    "run_backup",
    "run_restore",
]
