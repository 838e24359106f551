"""The typer application and the one place that turns errors into exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from importlib import import_module
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
import typer.main
from typer.core import TyperGroup

from haprotect.cli.verbs import SUMMARIES, module_of
from haprotect.errors import HaprotectError

if TYPE_CHECKING:
    from rich.console import Console
    from typer import _click


class Group(TyperGroup):
    """A command group whose help lists each command's whole summary.

    Its unused ``--help`` flag is False, not None: typer coerces every
    parameter value that is not already of its type through a pydantic
    adapter, built (and pydantic imported) on first use; a group's ``--help``
    not given has the value None, so ``haprotect COMMAND --help`` would import
    pydantic for the group's flag alone. Every group of the application uses
    this class, so printing help loads no pydantic.
    """

    def get_help_option(self, ctx: Any) -> typer.core.TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option

    def summaries(self, ctx: _click.Context) -> list[tuple[str, str]]:
        """Each visible command's name and the first sentence of its help."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=sys.maxsize)))
        return rows

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        rows = self.summaries(ctx)
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class Verbs(Group):
    """The application's group: a verb's module is imported when the verb is used.

    Listing the verbs (``haprotect --help``, a mistyped verb's suggestions)
    reads :mod:`haprotect.cli.verbs` alone, so the command line starts
    without loading any command's code.
    """

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return [*SUMMARIES, *(name for name in self.commands if name not in SUMMARIES)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in self.commands and cmd_name in SUMMARIES:
            import_module(module_of(cmd_name))
            command = registered(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def summaries(self, ctx: _click.Context) -> list[tuple[str, str]]:
        return [(name, SUMMARIES[name]) for name in SUMMARIES]


def registered(verb: str) -> _click.Command | None:
    """The command its module registered as ``verb`` on :data:`app`, if any."""
    for info in app.registered_commands:
        if info.callback is not None and verb == (
            info.name or typer.main.get_command_name(info.callback.__name__)
        ):
            return typer.main.get_command_from_info(
                info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=None
            )
    for group in app.registered_groups:
        if group.name == verb:
            return typer.main.get_group_from_info(
                group,
                pretty_exceptions_short=app.pretty_exceptions_short,
                suggest_commands=app.suggest_commands,
                rich_markup_mode=None,
            )
    return None


app = typer.Typer(
    name="haprotect",
    cls=Verbs,
    help="HA-aware data protection: discover what a cluster makes highly available, "
    "generate an explained backup policy for it, and keep that policy in step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def application() -> None:
    """Make the application a group even before any verb is loaded."""


class LazyConsole:
    """A rich console made on first use.

    Importing rich costs a fifth of the command line's start, and printing
    help needs none of it; a command's first line of output pays it instead.
    """

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    def print(self, *objects: Any, **options: Any) -> None:
        self.console.print(*objects, **options)

    def out(self, *objects: Any, **options: Any) -> None:
        self.console.out(*objects, **options)


stderr = LazyConsole(stderr=True)
stdout = LazyConsole(stderr=False)


class _WarningHandler(logging.Handler):
    """Warnings from the layers below become ``haprotect: warning: ...`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        stderr.print(f"haprotect: warning: {record.getMessage()}", markup=False)


_logger = logging.getLogger("haprotect")
_logger.addHandler(_WarningHandler(logging.WARNING))
_logger.propagate = False

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a HaprotectError as one line plus hint, exit with its code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except HaprotectError as exc:
            stderr.print(f"haprotect: error: {exc.message}", markup=False)
            if exc.hint:
                stderr.print(f"hint: {exc.hint}", markup=False)
            sys.exit(exc.exit_code)

    return wrapper
