"""Entry point of the ``haprotect`` console script.

Importing a verb module registers its command on :data:`app`.
"""

from __future__ import annotations

from haprotect.cli import (
    backup,
    diff,
    discover,
    drift,
    explain,
    lab,
    plan,
    policy,
    repo,
    restore,
    rules,
    snapshots,
    token,
    validate,
)
from haprotect.cli.app import app

VERBS = (
    discover,
    plan,
    validate,
    explain,
    diff,
    drift,
    rules,
    lab,
    repo,
    backup,
    snapshots,
    restore,
    policy,
    token,
)


def main() -> None:
    app()
