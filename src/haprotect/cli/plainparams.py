"""Commands whose plain parameters are coerced without pydantic.

typer coerces every parameter value (bool flags aside) through a pydantic
``TypeAdapter`` built on first use, so running any command with a string,
number or path parameter imports pydantic and builds its schemas: about
15 MiB and a tenth of a second, a third of the memory a no-change
``haprotect repo backup`` needs besides its key derivation. :class:`PlainCommand`
gives the parameters of plain types (``str``, ``int`` and ``float`` with their
``min``/``max``, ``Path``, each alone, optional or in a list) a coercion of
their own, with typer's messages; any other parameter keeps typer's.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

from typer._coercion import RuntimeParam
from typer._param_types import coerce_cli_path, routes_to_path
from typer.core import TyperCommand

if TYPE_CHECKING:
    from typer import _click
    from typer.core import _TyperParameter
    from typer.models import ParameterInfo

_NUMBER_WORDS = {int: "a valid integer", float: "a valid number"}


class PlainCommand(TyperCommand):
    """A typer command whose plain parameters need no pydantic (``cls=PlainCommand``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None or descriptor.file_annotation is not None:
                continue
            plain = plain_param(descriptor.annotation, descriptor.parameter_info)
            if plain is not None:
                param._runtime_param = plain  # type: ignore[attr-defined]

    def get_help_option(self, ctx: _click.Context) -> Any:
        """The ``--help`` flag, False when not given (None would be coerced by pydantic)."""
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


def plain_param(annotation: Any, info: ParameterInfo) -> RuntimeParam | None:
    """A coercion of ``annotation`` without pydantic, or None when it is not plain."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) != 1:
            return None
        annotation = inner[0]
    many = get_origin(annotation) is list
    leaf = get_args(annotation)[0] if many else annotation
    convert = _converter(leaf, info)
    if convert is None:
        return None
    return _Plain(parameter_info=info, annotation=annotation, convert=convert, many=many)


Converter = Callable[[Any, "_TyperParameter", "_click.Context"], Any]


def _converter(leaf: Any, info: ParameterInfo) -> Converter | None:
    if info.parser is not None or getattr(info, "click_type", None) is not None:
        return None
    if leaf is str and not routes_to_path(leaf, info):
        return lambda value, param, ctx: _text(value)
    if leaf in (int, float) and not info.clamp:
        return lambda value, param, ctx: _number(leaf, value, info)
    if isinstance(leaf, type) and issubclass(leaf, Path):
        path_type = info.path_type or leaf
        if not (isinstance(path_type, type) and issubclass(path_type, Path)):
            return None
        return lambda value, param, ctx: coerce_cli_path(
            path_type(value) if isinstance(value, str) else value,
            info,
            path_type=path_type,
            param=param,
            ctx=ctx,
        )
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(sys.getfilesystemencoding(), "surrogateescape")
    return str(value)


def _number(kind: type[int] | type[float], value: Any, info: ParameterInfo) -> int | float:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"Input should be {_NUMBER_WORDS[kind]}, unable to parse string as "
            f"{'an integer' if kind is int else 'a number'}"
        ) from None
    if info.min is not None and number < info.min:
        raise ValueError(f"Input should be greater than or equal to {info.min}")
    if info.max is not None and number > info.max:
        raise ValueError(f"Input should be less than or equal to {info.max}")
    return number


@dataclass(frozen=True)
class _Plain(RuntimeParam):
    convert: Converter
    many: bool

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: _click.Context) -> Any:
        from typer._click.exceptions import BadParameter

        try:
            if self.many:
                return [self.convert(v, param, ctx) for v in value]
            return self.convert(value, param, ctx)
        except ValueError as exc:
            raise BadParameter(str(exc), ctx=ctx, param=param) from None
