"""The command lines of the service's child runs, each what an administrator would type.

Every run of the service is a ``haprotect`` command with ``--json``
(:mod:`haprotect.service.child`); these functions say which. Keeping them
in one place keeps the service honest: what it does can be done, and
replayed, by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from haprotect.model.policy import Retention
from haprotect.service.config import RepositoryConfig

#: How long a repository command waits for another's conflicting lock.
LOCK_WAIT_SECONDS = 600


def _password(option: str, repo: RepositoryConfig) -> list[str]:
    return [option, str(repo.password_file)] if repo.password_file is not None else []


def backup_args(
    policy_file: Path,
    repo: RepositoryConfig,
    *,
    applications: Sequence[str] = (),
    datasets: Sequence[str] = (),
    inventory: Path | None = None,
    staging: Path | None = None,
) -> list[str]:
    """One job's backup: its application (a group) or its data set, into ``repo``."""
    args = ["backup", str(policy_file), "--repo", repo.url, "--init", "--json"]
    args += ["--inventory", str(inventory)] if inventory is not None else []
    args += ["--staging", str(staging)] if staging is not None else []
    for application in applications:
        args += ["--app", application]
    for dataset in datasets:
        args += ["--dataset", dataset]
    return args + _password("--password-file", repo)


def forget_args(
    repo: RepositoryConfig,
    retention: Retention,
    *,
    applications: Sequence[str] = (),
    datasets: Sequence[str] = (),
) -> list[str]:
    """Retention of one job's sets in ``repo`` (the newest complete set is never removed)."""
    args = ["repo", "forget", repo.url, "--json", "--retry-lock", str(LOCK_WAIT_SECONDS)]
    for name, count in retention.as_dict().items():
        if count:
            args += [f"--{name.replace('_', '-')}", str(count)]
    for application in applications:
        args += ["--app", application]
    for dataset in datasets:
        args += ["--dataset", dataset]
    return args + _password("--password-file", repo)


def copy_args(source: RepositoryConfig, target: RepositoryConfig, set_id: str) -> list[str]:
    """Copy one snapshot set to another repository (only the chunks it lacks)."""
    args = ["repo", "copy", source.url, target.url, "--set", set_id, "--init", "--json"]
    return args + _password("--password-file", source) + _password("--to-password-file", target)


def check_args(repo: RepositoryConfig, part: int, parts: int) -> list[str]:
    """Read part ``part`` of ``parts`` of the repository's packs and verify every blob."""
    args = ["repo", "check", repo.url, "--subset", f"{part}/{parts}", "--json"]
    args += ["--retry-lock", str(LOCK_WAIT_SECONDS)]
    return args + _password("--password-file", repo)


def prune_args(repo: RepositoryConfig) -> list[str]:
    """Delete what no snapshot uses, under the repository's exclusive lock."""
    args = ["repo", "prune", repo.url, "--json", "--retry-lock", str(LOCK_WAIT_SECONDS)]
    return args + _password("--password-file", repo)


def drift_args(policy_file: Path) -> list[str]:
    """Compare a policy with the cluster as it is now."""
    return ["drift", str(policy_file), "--json"]


def plan_args(source: str, rules_file: str | None, output: Path) -> list[str]:
    """Generate the policy again from the cluster, with the rules it was generated with."""
    args = ["plan", source, "--output", str(output), "--json"]
    return args + (["--rules", rules_file] if rules_file else [])


def restore_args(
    repo: RepositoryConfig,
    set_ref: str,
    *,
    application: str | None = None,
    tiers: Sequence[str] = (),
    target: Path | None = None,
    inventory: Path | None = None,
) -> list[str]:
    """Restore a set (``latest``: the newest complete one) without questions."""
    args = ["restore", set_ref, "--repo", repo.url, "--yes", "--json"]
    args += ["--inventory", str(inventory)] if inventory is not None else []
    if application:
        args += ["--app", application]
    for tier in tiers:
        args += ["--tier", tier]
    if target is not None:
        args += ["--to", str(target)]
    return args + _password("--password-file", repo)
