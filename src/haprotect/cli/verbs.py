"""The index of the command line: each verb, its one-line summary, its module.

``haprotect --help`` prints this table and loads no verb; running or asking
the help of a verb imports its module, ``haprotect.cli.<verb>``, which
registers the command on the application. A summary is the first sentence
of the verb's help; a test holds the two together.
"""

from __future__ import annotations

SUMMARIES: dict[str, str] = {
    "discover": "Query a cluster and show its nodes, HA data sets and applications.",
    "plan": "Generate a data protection policy for a cluster, every decision with its reason.",
    "validate": "Check a policy file: its format, schedules, counts, repositories and group "
    "orders.",
    "explain": "Explain a policy: each decision of each item, its value, why, and the cluster "
    "object or rule it came from; then the consistency groups with their quiesce and restore "
    "orders, and the data sets left out.",
    "diff": "Show the semantic differences between two policies.",
    "drift": "Compare a policy with the cluster as it is now.",
    "rules": "Show the rules `haprotect plan` applies.",
    "schedule": "Show what the service would run: every job of a policy (a consistency group, "
    "or an item in no group) and each time it starts in the window, in time order, with its "
    "priority and repository.",
    "backup": "Back up what a policy protects, from the standby where one is healthy.",
    "snapshots": "List the snapshot sets in a repository (no catalog needed: the snapshots "
    "say it all).",
    "restore": "Restore a snapshot set: storage, then database, then application, then front end.",
    "repo": "The repository: deduplicated, compressed, encrypted snapshots in a directory or S3.",
    "serve": "Run the protection service: schedules, retention, copies, checks, drift, API.",
    "status": "Show the protection of each application and data set, from the service's catalog.",
    "policy": "Policies in the catalog: apply a version, review it (diff, approve, reject).",
    "token": "Bearer tokens of the service's API, each with a role: viewer (read), operator "
    "(run backups and restores), admin (approve policies, manage tokens).",
    "lab": "A real local HA lab: PostgreSQL primary and hot standby, an orders API with a "
    "write-behind buffer, a web front end with uploads, and its Pacemaker CIB.",
}


def module_of(verb: str) -> str:
    """The module that registers ``verb`` on the application."""
    return f"haprotect.cli.{verb}"
