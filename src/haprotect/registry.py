"""One generic registry for every kind of plug-in.

Built-ins are registered explicitly by the package that owns them; third
parties add theirs through an entry point group (``haprotect.sources``,
``haprotect.movers``, ``haprotect.quiescers``, ``haprotect.storage``).
Importing this module registers nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from haprotect.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins of one kind. Registering a name twice is an error."""

    def __init__(self, kind: str, entry_point_group: str) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise RegistryError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __iter__(self) -> Iterator[T]:
        self._load_entry_points()
        return iter(list(self._items.values()))

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._items:
                raise RegistryError(
                    f"{self.kind} {ep.name!r} from {ep.value} clashes with a built-in"
                )
            try:
                factory: Callable[[], T] = ep.load()
            except ImportError as exc:
                raise RegistryError(
                    f"{self.kind} plug-in {ep.name!r} cannot be imported: {exc}",
                    hint=f"install the extra it needs, e.g. pip install 'haprotect[{ep.name}]'",
                ) from exc
            self.register(ep.name, factory())


def require_extra(module: str, extra: str) -> None:
    """Raise a clear error when an optional dependency is missing."""
    try:
        __import__(module)
    except ImportError as exc:
        raise RegistryError(
            f"{module} is not installed", hint=f"pip install 'haprotect[{extra}]'"
        ) from exc
