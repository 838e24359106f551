"""``haprotect repo``: create, back up into, list, restore, thin out and verify a repository.

The commands live in repo_backup.py (init, backup, snapshots, restore),
repo_maintain.py (forget, prune, check, stats, unlock), repo_repair.py
(repair index, repair snapshots) and repo_copy.py (copy); importing them registers them on
:data:`~haprotect.cli.repo_common.repo_app`, in that order.
"""

from __future__ import annotations

from haprotect.cli import repo_backup, repo_copy, repo_maintain, repo_repair
from haprotect.cli.app import app
from haprotect.cli.repo_common import repo_app

app.add_typer(repo_app, name="repo")

COMMANDS = (repo_backup, repo_maintain, repo_repair, repo_copy)
