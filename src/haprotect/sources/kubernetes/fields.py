"""Typed reading of Kubernetes objects, as plain JSON-shaped data.

Every value is checked as it is read: a field of the wrong type is an
:class:`~haprotect.errors.ClusterConfigError` of one line naming the file or
API, the object and the field's path, never the value (it may be a secret).
A missing field reads as its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from haprotect.errors import ClusterConfigError, located


@dataclass(frozen=True, slots=True)
class Fields:
    """One JSON object inside a Kubernetes object: ``what`` names the object, ``path`` the place."""

    raw: Mapping[str, object]
    origin: str
    what: str
    path: str = ""

    def fail(self, key: str, expected: str) -> ClusterConfigError:
        where = f"{self.path}.{key}" if self.path else key
        return ClusterConfigError(located(self.origin, None, f"{self.what}: {where} {expected}"))

    def _get(self, key: str) -> object:
        return self.raw.get(key)

    def text(self, key: str, default: str = "") -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, f"is {_type(value)}, not a string")
        return value

    def number(self, key: str, default: int = 0) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"is {_type(value)}, not an integer")
        return value

    def scalar(self, key: str) -> str:
        """A string or a number, as text (``minAvailable: 1`` or ``"50%"``); '' when absent."""
        value = self._get(key)
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(key, f"is {_type(value)}, not a string or an integer")
        return str(value)

    def obj(self, key: str) -> Fields:
        value = self._get(key)
        child = f"{self.path}.{key}" if self.path else key
        if value is None:
            return Fields({}, self.origin, self.what, child)
        if not isinstance(value, Mapping):
            raise self.fail(key, f"is {_type(value)}, not an object")
        return Fields(value, self.origin, self.what, child)

    def at(self, dotted: str) -> Fields:
        found = self
        for key in dotted.split("."):
            found = found.obj(key)
        return found

    def objects(self, key: str) -> list[Fields]:
        """A list of objects."""
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"is {_type(value)}, not a list")
        child = f"{self.path}.{key}" if self.path else key
        out: list[Fields] = []
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise self.fail(f"{key}[{index}]", f"is {_type(item)}, not an object")
            out.append(Fields(item, self.origin, self.what, f"{child}[{index}]"))
        return out

    def texts(self, key: str) -> list[str]:
        """A list of strings."""
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"is {_type(value)}, not a list")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{key}[{index}]", f"is {_type(item)}, not a string")
        return list(value)

    def text_map(self, key: str) -> dict[str, str]:
        """An object of strings (labels, a selector's matchLabels)."""
        found = self.obj(key)
        out: dict[str, str] = {}
        for name, value in found.raw.items():
            if not isinstance(value, str):
                raise found.fail(str(name), f"is {_type(value)}, not a string")
            out[str(name)] = value
        return out

    def has(self, key: str) -> bool:
        return self._get(key) is not None


def _type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return "of another type"
