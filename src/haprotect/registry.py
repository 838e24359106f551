"""One generic registry for every kind of plug-in.

Each plug-in package (sources, movers, quiescers, storage) owns one
:class:`Registry`, made with the list of its built-ins and the entry point
group third parties add to (``haprotect.sources``, ``haprotect.movers``,
``haprotect.quiescers``, ``haprotect.storage``). A built-in and an entry
point name the same thing the same way: ``module:attribute``, a factory
called without arguments that returns the plug-in (a class is one).

Every registry answers the same three verbs: :meth:`Registry.get` (by name),
:meth:`Registry.select` (the first plug-in whose ``applies_to`` accepts a
thing: a data set kind, a URL, a quiesce spec) and :meth:`Registry.names`.
The first of them reads the entry points, so a registry is never seen
without its plug-ins; a plug-in's module is imported only when the plug-in
itself is needed. Selection tries the built-ins in their order, then the
entry points by name.

Refused with a :class:`~haprotect.errors.RegistryError` (exit 5): a name
given twice (both origins named), a plug-in whose module needs a package
that is not installed (with the extra that installs it), a factory that
fails or returns a plug-in under another name. Importing this module, or
making a registry, imports and registers nothing.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from haprotect.errors import RegistryError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

K_contra = TypeVar("K_contra", contravariant=True)


class Plugin(Protocol[K_contra]):
    """What every plug-in has: its ``name``, and whether it applies to a thing."""

    @property
    def name(self) -> str: ...

    def applies_to(self, thing: K_contra, /) -> bool: ...


T = TypeVar("T", bound=Plugin[Any])
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Builtin:
    """A plug-in shipped with haprotect: its name, ``module:attribute`` and the extra it needs."""

    name: str
    ref: str
    extra: str | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    """Where a name comes from, and how to install what its module needs."""

    name: str
    ref: str
    origin: str
    install_hint: str


class Registry(Generic[T, K]):
    """The plug-ins of one kind, by name; ``K`` is what ``select`` chooses for."""

    def __init__(
        self,
        kind: str,
        entry_point_group: str,
        builtins: Iterable[Builtin],
        *,
        contract: Iterable[str] = (),
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.contract = tuple(contract)
        """Methods every plug-in must have (beyond ``applies_to``): one written against an
        older contract is refused when it loads, not halfway through a run."""
        self._builtins: dict[str, _Entry] = {}
        for builtin in builtins:
            entry = _builtin_entry(builtin)
            self._check_new(self._builtins, entry)
            self._builtins[builtin.name] = entry
        self._entries: dict[str, _Entry] | None = None
        self._loaded: dict[str, T] = {}
        self._lock = threading.RLock()

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``; RegistryError naming the known ones if none."""
        entries = self._read()
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none"
            raise RegistryError(f"unknown {self.kind} {name!r} (known: {known})")
        return self._load(entry)

    def select(self, thing: K) -> T | None:
        """The first plug-in that applies to ``thing``, or None.

        None is for the caller to name: an unknown source URL is bad usage,
        a data set kind without a mover a plan's warning.
        """
        for entry in self._read().values():
            plugin = self._load(entry)
            if plugin.applies_to(thing):
                return plugin
        return None

    def names(self) -> list[str]:
        """Every registered name, sorted; no plug-in module is imported for it."""
        return sorted(self._read())

    def __iter__(self) -> Iterator[T]:
        """Every plug-in, in the order ``select`` tries them (each module imported)."""
        return iter([self._load(entry) for entry in self._read().values()])

    def refresh(self) -> None:
        """Read the entry points again at the next use (after installing a plug-in).

        Built-ins already made are kept: a quiescer may hold state for a hold.
        """
        with self._lock:
            self._entries = None
            self._loaded = {n: p for n, p in self._loaded.items() if n in self._builtins}

    def _read(self) -> dict[str, _Entry]:
        with self._lock:
            if self._entries is None:
                entries = dict(self._builtins)
                for entry in sorted(self._entry_points(), key=lambda e: (e.name, e.origin)):
                    self._check_new(entries, entry)
                    entries[entry.name] = entry
                self._entries = entries
            return self._entries

    def _entry_points(self) -> list[_Entry]:
        from importlib.metadata import entry_points

        return [_entry_point_entry(ep) for ep in entry_points(group=self.entry_point_group)]

    def _check_new(self, entries: dict[str, _Entry], entry: _Entry) -> None:
        first = entries.get(entry.name)
        if first is not None:
            raise RegistryError(
                f"{self.kind} {entry.name!r} is registered twice: by {first.origin} "
                f"and by {entry.origin}",
                hint="uninstall one of the two, or have one register another name",
            )

    def _load(self, entry: _Entry) -> T:
        with self._lock:
            loaded = self._loaded.get(entry.name)
            if loaded is None:
                loaded = self._start(entry)
                self._loaded[entry.name] = loaded
            return loaded

    def _start(self, entry: _Entry) -> T:
        factory = self._factory(entry)
        try:
            plugin: T = factory()
        except Exception as exc:
            raise RegistryError(
                f"{self.kind} {entry.name!r} ({entry.origin}) failed to start: "
                f"{type(exc).__name__}: {exc}",
                hint=entry.install_hint,
            ) from exc
        if plugin.name != entry.name:
            raise RegistryError(
                f"{self.kind} {entry.name!r} ({entry.origin}) calls itself {plugin.name!r}",
                hint="a plug-in's name must be the name it is registered under",
            )
        missing = [
            m for m in ("applies_to", *self.contract) if not callable(getattr(plugin, m, None))
        ]
        if missing:
            raise RegistryError(
                f"{self.kind} {entry.name!r} ({entry.origin}) lacks {', '.join(missing)}",
                hint=f"a {self.kind} must have every method of the {self.kind} contract",
            )
        return plugin

    def _factory(self, entry: _Entry) -> Callable[[], T]:
        module_name, _, attribute = entry.ref.partition(":")
        try:
            module = importlib.import_module(module_name.strip())
        except ImportError as exc:
            missing = f"module {exc.name!r}" if exc.name else "a module"
            raise RegistryError(
                f"{self.kind} {entry.name!r} ({entry.origin}) needs {missing}, "
                "which is not installed",
                hint=entry.install_hint,
            ) from exc
        found: object = module
        try:
            for part in attribute.strip().split("."):
                found = getattr(found, part)
        except AttributeError:
            raise RegistryError(
                f"{self.kind} {entry.name!r} ({entry.origin}): {entry.ref} does not exist",
                hint=entry.install_hint,
            ) from None
        if not callable(found):
            raise RegistryError(
                f"{self.kind} {entry.name!r} ({entry.origin}): {entry.ref} is not a factory",
                hint="an entry point names a class or function that returns the plug-in",
            )
        factory: Callable[[], T] = found
        return factory


def _builtin_entry(builtin: Builtin) -> _Entry:
    if builtin.extra:
        hint = f"pip install 'haprotect[{builtin.extra}]'"
    else:
        hint = "reinstall haprotect: a module of its own is missing"
    return _Entry(builtin.name, builtin.ref, "haprotect (built in)", hint)


def _entry_point_entry(ep: EntryPoint) -> _Entry:
    dist = ep.dist
    dist_name = dist.name if dist is not None else None
    where = f"{dist_name} {dist.version}" if dist is not None else "an unknown distribution"
    ref = f"{ep.module}:{ep.attr}" if ep.attr else ep.module
    origin = f"entry point {ep.name} = {ep.value} of {where}"
    extras = tuple(ep.extras)
    if dist_name and extras:
        hint = f"pip install '{dist_name}[{','.join(extras)}]'"
    elif dist_name:
        hint = f"reinstall {dist_name} with its dependencies, or uninstall it"
    else:
        hint = "install the package that provides it"
    return _Entry(ep.name, ref, origin, hint)


def require_extra(module: str, extra: str) -> None:
    """Raise a clear error when an optional dependency is missing."""
    try:
        __import__(module)
    except ImportError as exc:
        raise RegistryError(
            f"{module} is not installed", hint=f"pip install 'haprotect[{extra}]'"
        ) from exc
