"""The index of verbs (haprotect.cli.verbs) agrees with the commands themselves.

``haprotect --help`` prints the index without loading any verb, so a verb
renamed, added or reworded without the index would go unseen in the help.
"""

from __future__ import annotations

import importlib
import sys

import pytest
import typer
from typer import _click
from typer.core import TyperGroup
from typer.testing import CliRunner

from haprotect.cli.app import app
from haprotect.cli.verbs import SUMMARIES, module_of
from haprotect.errors import ExitCode


def root_and_context() -> tuple[TyperGroup, _click.Context]:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    return root, _click.Context(root, info_name="haprotect")


@pytest.mark.parametrize("verb", list(SUMMARIES))
def test_each_verb_s_summary_is_the_first_sentence_of_its_help(verb: str) -> None:
    root, context = root_and_context()
    command = root.get_command(context, verb)
    assert command is not None, f"{module_of(verb)} registers no {verb!r}"
    assert command.get_short_help_str(limit=sys.maxsize) == SUMMARIES[verb]


def test_every_registered_command_is_in_the_index() -> None:
    for verb in SUMMARIES:
        importlib.import_module(module_of(verb))
    names = {
        info.name or typer.main.get_command_name(info.callback.__name__)
        for info in app.registered_commands
        if info.callback is not None
    } | {group.name for group in app.registered_groups}
    assert names == set(SUMMARIES)


def test_the_application_s_help_lists_every_verb_with_its_summary() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    commands = " ".join(result.output.partition("Commands:")[2].split())
    assert commands == " ".join(f"{verb} {summary}" for verb, summary in SUMMARIES.items())


def test_a_mistyped_verb_is_bad_usage_and_named() -> None:
    result = CliRunner().invoke(app, ["restor"])
    assert result.exit_code == ExitCode.USAGE
    assert "restor" in result.output and "restore" in result.output
