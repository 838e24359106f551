"""Entry point of the ``haprotect`` console script.

Importing a verb module registers its command on :data:`app`.
"""

from __future__ import annotations

from haprotect.cli import diff, discover, drift, explain, lab, plan, repo, rules, validate
from haprotect.cli.app import app

VERBS = (discover, plan, validate, explain, diff, drift, rules, lab, repo)


def main() -> None:
    app()
