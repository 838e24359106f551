"""Plain parameters are coerced as typer would, without pydantic."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from haprotect.cli.plainparams import PlainCommand, plain_param


class Color(Enum):
    RED = "red"


def make_app(seen: dict[str, object], cls: type[typer.core.TyperCommand]) -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command(cls=cls)
    def run(
        url: str,
        paths: list[Path],
        tag: Annotated[list[str] | None, typer.Option("--tag")] = None,
        readers: Annotated[int | None, typer.Option("--readers", min=0, max=16)] = None,
        wait: Annotated[float, typer.Option("--wait")] = 0.0,
        secret: Annotated[Path | None, typer.Option("--secret")] = None,
        json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        seen.update(
            url=url, paths=paths, tag=tag, readers=readers, wait=wait, secret=secret, json=json
        )

    @app.command()
    def other() -> None:
        """A second command, so that the first is called by name."""

    return app


def run(*args: str) -> tuple[int, str, dict[str, object]]:
    """The command run with plain coercion, checked against typer's own."""
    seen: dict[str, object] = {}
    result = CliRunner().invoke(make_app(seen, PlainCommand), ["run", *args])
    typers: dict[str, object] = {}
    expected = CliRunner().invoke(make_app(typers, typer.core.TyperCommand), ["run", *args])
    assert (result.exit_code, seen) == (expected.exit_code, typers)
    assert result.output == expected.output
    return result.exit_code, result.output, seen


def test_values_are_coerced_to_their_types() -> None:
    code, output, seen = run("u", "a", "b/c", "--tag", "x", "--tag", "y", "--readers", "3")
    assert code == 0, output
    assert seen == {
        "url": "u",
        "paths": [Path("a"), Path("b/c")],
        "tag": ["x", "y"],
        "readers": 3,
        "wait": 0.0,
        "secret": None,
        "json": False,
    }
    code, output, seen = run("u", "a", "--wait", "1.5", "--secret", "s", "--json")
    assert code == 0, output
    assert (seen["wait"], seen["secret"], seen["json"]) == (1.5, Path("s"), True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--readers", "-1"), "Input should be greater than or equal to 0"),
        (("--readers", "17"), "Input should be less than or equal to 16"),
        (("--readers", "x"), "Input should be a valid integer"),
        (("--wait", "soon"), "Input should be a valid number"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(args: tuple[str, str], message: str) -> None:
    code, output, _ = run("u", "a", *args)
    assert code == 2
    assert f"Invalid value for '{args[0]}'" in output and message in output


def test_other_types_are_left_to_typer() -> None:
    info = typer.models.OptionInfo()
    assert plain_param(datetime, info) is None
    assert plain_param(Color, info) is None
    assert plain_param(int | str, info) is None
    assert plain_param(int, typer.models.OptionInfo(clamp=True)) is None
    assert plain_param(list[int] | None, info) is not None
