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
    schedule,
    serve,
    snapshots,
    status,
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
    schedule,
    lab,
    repo,
    backup,
    snapshots,
    restore,
    status,
    serve,
    policy,
    token,
)


def main() -> None:
    app()
