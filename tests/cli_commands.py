"""Every command of the application, found by walking its groups.

The application loads a verb's module when the walk asks for it, so a walk
imports every command the way running each would.
"""

from __future__ import annotations

import typer
from typer import _click
from typer.core import TyperGroup

from haprotect.cli.main import app


def command_paths(*, groups: bool = False) -> list[tuple[str, ...]]:
    """The path of every command (``("repo", "backup")``...), groups too if asked."""
    root = typer.main.get_command(app)
    found: list[tuple[str, ...]] = []

    def walk(command: _click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, TyperGroup):
            if groups:
                found.append(path)
            context = _click.Context(command, info_name=path[-1] if path else "haprotect")
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None, f"{' '.join(path)} lists {name} but has no such command"
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(root, ())
    return sorted(found)
