"""The typer application and the one place that turns errors into exit codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from haprotect.errors import HaprotectError


class Group(TyperGroup):
    """A command group whose unused ``--help`` flag is False, not None.

    Typer coerces every parameter value that is not already of its type
    through a pydantic adapter, built (and pydantic imported) on first use; a
    group's ``--help`` not given has the value None, so ``haprotect COMMAND
    --help`` would import pydantic for the group's flag alone. Every group of
    the application uses this class, so printing help loads no pydantic.
    """

    def get_help_option(self, ctx: Any) -> typer.core.TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


app = typer.Typer(
    name="haprotect",
    cls=Group,
    help="HA-aware data protection: discover what a cluster makes highly available, "
    "generate an explained backup policy for it, and keep that policy in step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


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
