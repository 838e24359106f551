"""YAML input that remembers where each value came from.

Every YAML file haprotect reads by hand-written edge code (topology files,
policy files) goes through here, so that every complaint about it is one line
naming the file, the line and the field: ``topology.yaml:12: clusters[0].nodes[1]:
field required``.

Terms:

loc
    A path from the document root to one value: mapping keys (``str``) and
    sequence indices (``int``), the same shape as the ``loc`` of a pydantic
    error. ``()`` is the root.
line
    1-based. A mapping entry's line is the line of its *key*; a sequence
    item's line is where the item starts. A loc that is not in the document
    (a missing field) takes the line of its nearest ancestor that is.

Typical use at an edge::

    doc = read_yaml(path, error=PolicyError)
    spec = doc.validate(PolicySpec)               # pydantic model, errors by line
    if spec.rules[2].name in seen:                # checks pydantic cannot make
        raise doc.error_at(("rules", 2, "name"), "duplicate rule")

Beyond PyYAML's safe loading, duplicate keys in one mapping are errors (PyYAML
would silently keep the last). Merge keys (``<<``) and aliases work: a value
reached through an alias is located at the alias, a key merged in by ``<<``
where it is written. A document holding more than :data:`MAX_VALUES` values
once its aliases are expanded (a "billion laughs"), or an alias inside
itself, is refused before anything validates it. So is a number no input
could mean: an integer beyond 64 bits (:data:`MAX_INT`; one of thousands of
digits would otherwise stop the parser at Python's own limit), a float
too large to be finite unless written ``.inf``, and a date that is not one
(``2024-13-01``): each is one line naming the file, the line and the field.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from haprotect.errors import HaprotectError, InputError, located

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_MERGE_TAG = "tag:yaml.org,2002:merge"

#: Documents larger than this once aliases are expanded are refused.
MAX_VALUES = 1_000_000

#: The largest integer a YAML input may hold (64 bits, signed; the smallest is -MAX_INT - 1).
MAX_INT = 2**63 - 1

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# No 64-bit integer takes more characters than this, prefix and sign included.
_INT_TEXT_MAX = 67


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed YAML document with the line of every mapping entry and list item.

    ``data`` is what ``yaml.safe_load`` would return; ``error`` is the
    exception class that :meth:`error_at` and :meth:`validate` raise.
    """

    origin: str
    data: Any
    lines: Mapping[tuple[str, ...], int]
    error: type[HaprotectError] = InputError

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc``, or of its nearest ancestor present in the document."""
        key = tuple(str(part) for part in loc)
        for end in range(len(key), -1, -1):
            line = self.lines.get(key[:end])
            if line is not None:
                return line
        return None

    def locate(self, loc: Sequence[str | int], message: str) -> str:
        """``origin:line: field.path: message`` (the field is left out for the root)."""
        field = format_loc(loc)
        text = f"{field}: {message}" if field else message
        return located(self.origin, self.line_of(loc), text)

    def error_at(self, loc: Sequence[str | int], message: str) -> HaprotectError:
        """An error to raise for the value at ``loc``."""
        return self.error(self.locate(loc, message))

    def validate(self, model: type[M]) -> M:
        """Validate ``data`` with a pydantic model, or raise ``error`` in one line.

        Errors are reported in document order; when there are several, the
        first is given and the count of the others is appended.
        """
        if self.data is None:
            raise self.error(located(self.origin, None, "empty document"))
        try:
            with gc_paused():
                return model.model_validate(self.data)
        except ValidationError as exc:
            messages = validation_messages(self, exc)
            more = len(messages) - 1
            suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
            raise self.error(messages[0] + suffix) from None


def format_loc(loc: Sequence[str | int]) -> str:
    """``("clusters", 0, "nodes", 1, "name")`` -> ``clusters[0].nodes[1].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_messages(doc: YamlDocument, exc: ValidationError) -> list[str]:
    """Every error of ``exc`` as ``origin:line: field.path: message``, in document order.

    Parts of a pydantic ``loc`` that do not name data (union member tags,
    validator names) are dropped, so the field path is the one the user wrote.
    """
    located_errors: list[tuple[int, int, str]] = []
    for index, error in enumerate(exc.errors()):
        loc = _data_loc(doc.data, error["loc"], missing=error["type"] == "missing")
        line = doc.line_of(loc)
        located_errors.append((line or 0, index, doc.locate(loc, _message(error))))
    located_errors.sort()
    return [text for _, _, text in located_errors]


def parse_yaml(text: str, origin: str, *, error: type[HaprotectError] = InputError) -> YamlDocument:
    """Parse one YAML document, or raise ``error`` as ``origin:line: malformed YAML: ...``."""
    try:
        try:
            with gc_paused():
                data, lines = _load(text, origin, error, _FastLoader)
        except yaml.YAMLError:
            # libyaml's messages are terser: parse again for the precise one.
            data, lines = _load(text, origin, error, _SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise error(_marked_message(origin, exc)) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise error(located(origin, line, f"malformed YAML: {_reader_problem(exc)}")) from None
    except yaml.YAMLError as exc:
        raise error(located(origin, None, f"malformed YAML: {exc}")) from None
    except RecursionError:
        raise error(located(origin, None, "malformed YAML: nested too deeply")) from None
    return YamlDocument(origin, data, lines, error)


def read_yaml(
    path: Path, *, origin: str | None = None, error: type[HaprotectError] = InputError
) -> YamlDocument:
    """Read and parse a UTF-8 YAML file; ``origin`` (default: the path) names it in errors."""
    name = origin if origin is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(located(name, None, f"cannot read: {exc.strerror or exc}")) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(located(name, line, "not UTF-8 text")) from None
    return parse_yaml(text, name, error=error)


class _OutOfRange(Exception):
    """A scalar that YAML reads as a number or date, but no input can mean."""

    def __init__(self, node: yaml.Node, problem: str) -> None:
        super().__init__(problem)
        self.node = node
        self.problem = problem


_RANGE = f": integers have 64 bits, up to {MAX_INT} (quote a value meant as text)"


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(node.value).replace("_", "").lstrip("+-")
    if len(text) > _INT_TEXT_MAX:
        digits = sum(c.isalnum() for c in text)
        raise _OutOfRange(node, f"integer out of range ({digits} digits){_RANGE}")
    value: int = loader.construct_yaml_int(node)
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise _OutOfRange(node, f"integer out of range{_RANGE}")
    return value


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    value: float = loader.construct_yaml_float(node)
    if value in (float("inf"), float("-inf")) and "inf" not in str(node.value).lower():
        raise _OutOfRange(node, "number too large (write .inf for infinity)")
    return value


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    try:
        return loader.construct_yaml_timestamp(node)
    except (ValueError, OverflowError) as exc:
        raise _OutOfRange(node, f"invalid date {node.value!r}: {exc}") from None


_RESOLVER = yaml.resolver.Resolver()
#: Longer scalars (rarely repeated) are resolved each time, and not kept.
_CACHED_MAX = 64


@lru_cache(maxsize=65_536)
def _scalar_tag(value: str, implicit: tuple[bool, bool]) -> str:
    return str(_RESOLVER.resolve(yaml.ScalarNode, value, implicit))  # type: ignore[no-untyped-call]


def _resolve(self: yaml.SafeLoader, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
    """The resolver's tag, from a cache for scalars: a policy repeats its values a lot."""
    if kind is yaml.ScalarNode and isinstance(implicit, tuple) and len(value) <= _CACHED_MAX:
        return _scalar_tag(value, implicit)
    return str(yaml.resolver.Resolver.resolve(self, kind, value, implicit))  # type: ignore[no-untyped-call]


def _bounded(loader_type: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    """``loader_type`` with numbers and dates checked as they are constructed."""
    bounded: type[yaml.SafeLoader] = type(
        f"Bounded{loader_type.__name__}", (loader_type,), {"resolve": _resolve}
    )
    bounded.add_constructor(_INT_TAG, _construct_int)
    bounded.add_constructor(_FLOAT_TAG, _construct_float)
    bounded.add_constructor(_TIMESTAMP_TAG, _construct_timestamp)
    return bounded


# libyaml's parser when PyYAML was built with it: the same nodes and marks,
# several times faster on large files.
_FastLoader = _bounded(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
_SafeLoader = _bounded(yaml.SafeLoader)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large document is built.

    Parsing and validating create hundreds of thousands of objects that all
    live on; each generation-0 collection would walk them again, and on a
    policy of 10,000 items collections took more time than parsing.
    Reference counting still frees what dies.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(
    text: str, origin: str, error: type[HaprotectError], loader_type: type[yaml.SafeLoader]
) -> tuple[Any, Mapping[tuple[str, ...], int]]:
    """The document's data and the line of each of its locs.

    Most documents are plain (string keys, no merge keys, no unusual tags or
    numbers): they are built in one pass and their lines are found only if
    asked for (an error to report), by parsing again. Any other document
    takes the full path, which checks and locates everything.
    """
    loader = loader_type(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        try:
            data = _PlainBuilder(loader).build(node)
        except _NotPlain:
            return _checked(loader, node, origin, error)
        return data, _LazyLines(text, origin, error, loader_type)
    finally:
        loader.dispose()


def _checked(
    loader: yaml.SafeLoader, node: yaml.Node, origin: str, error: type[HaprotectError]
) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Build ``node`` with every check, and the line of each loc."""
    try:
        size = _expanded_size(node, {}, set())
    except _AliasCycle as cycle:
        raise error(
            located(origin, cycle.line, "malformed YAML: an alias refers to itself")
        ) from None
    if size > MAX_VALUES:
        raise error(
            located(origin, None, f"more than {MAX_VALUES} values once aliases are expanded")
        )
    lines: dict[tuple[str, ...], int] = {(): node.start_mark.line + 1}
    # Before construction, which flattens merge keys into the nodes.
    walker = _LineWalker(loader, origin, error, lines)
    try:
        walker.walk(node, ())
        return loader.construct_document(node), lines
    except _OutOfRange as exc:
        field = format_loc(walker.locs.get(id(exc.node), ()))
        problem = f"{field}: {exc.problem}" if field else exc.problem
        raise error(located(origin, exc.node.start_mark.line + 1, problem)) from None


class _NotPlain(Exception):
    """The document needs the full path (a duplicate key, a merge key, an unusual tag...)."""


_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_PLAIN_SCALAR_TAGS = frozenset(
    (_INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG, "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")
)


class _PlainBuilder:
    """Builds a plain document in one pass, as PyYAML's constructor would; raises
    :class:`_NotPlain` at anything else, so the full path can check and locate it."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        #: id of a node -> (its value, how many values it holds once expanded)
        self.done: dict[int, tuple[Any, int]] = {}
        self.open: set[int] = set()

    def build(self, node: yaml.Node) -> Any:
        return self._node(node)[0]

    def _node(self, node: yaml.Node) -> tuple[Any, int]:
        known = self.done.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.ScalarNode):
            result = (self._scalar(node), 1)
        elif id(node) in self.open:
            raise _NotPlain
        else:
            self.open.add(id(node))
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
                result = self._mapping(node)
            elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
                values = [self._node(item) for item in node.value]
                result = ([v for v, _ in values], 1 + sum(n for _, n in values))
            else:
                raise _NotPlain
            self.open.discard(id(node))
        if result[1] > MAX_VALUES:
            raise _NotPlain
        self.done[id(node)] = result
        return result

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STR_TAG:
            return node.value
        if node.tag not in _PLAIN_SCALAR_TAGS:
            raise _NotPlain
        try:
            return self.loader.yaml_constructors[node.tag](self.loader, node)
        except _OutOfRange:
            raise _NotPlain from None

    def _mapping(self, node: yaml.MappingNode) -> tuple[dict[str, Any], int]:
        data: dict[str, Any] = {}
        size = 1
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                raise _NotPlain
            key = key_node.value
            if key in data:
                raise _NotPlain
            if value_node.tag == _STR_TAG and isinstance(value_node, yaml.ScalarNode):
                data[key] = value_node.value  # most values: no call for them
                size += 2
                continue
            value, count = self._node(value_node)
            data[key] = value
            size += 1 + count
        return data, size


class _LazyLines(Mapping[tuple[str, ...], int]):
    """The lines of a plain document, found by parsing it again when first asked for."""

    def __init__(
        self,
        text: str,
        origin: str,
        error: type[HaprotectError],
        loader_type: type[yaml.SafeLoader],
    ) -> None:
        self._source = (text, origin, error, loader_type)
        self._lines: dict[tuple[str, ...], int] | None = None

    def _found(self) -> dict[tuple[str, ...], int]:
        if self._lines is None:
            text, origin, error, loader_type = self._source
            loader = loader_type(text)
            try:
                node = loader.get_single_node()
                with gc_paused():
                    self._lines = {} if node is None else _checked(loader, node, origin, error)[1]
            finally:
                loader.dispose()
        return self._lines

    def __getitem__(self, key: tuple[str, ...]) -> int:
        return self._found()[key]

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self._found())

    def __len__(self) -> int:
        return len(self._found())


class _AliasCycle(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values ``node`` holds once every alias is expanded (memoised)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.ScalarNode):
        return 1
    if id(node) in open_nodes:
        raise _AliasCycle(node.start_mark.line + 1)
    open_nodes.add(id(node))
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_nodes)
        if total > MAX_VALUES:
            break
    open_nodes.discard(id(node))
    sizes[id(node)] = total
    return total


class _LineWalker:
    """Records the line of every entry and item; rejects duplicate keys."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        origin: str,
        error: type[HaprotectError],
        lines: dict[tuple[str, ...], int],
    ) -> None:
        self.loader = loader
        self.origin = origin
        self.error = error
        self.lines = lines
        self.walked: set[int] = set()
        #: where each value node was first reached
        self.locs: dict[int, Loc] = {}

    def walk(self, node: yaml.Node, path: Loc) -> None:
        if id(node) in self.walked:
            return
        self.walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self._mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._record((*path, index), item.start_mark.line + 1, item)

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> None:
        first_seen: dict[object, int] = {}
        for key_node, value_node, explicit in _entries(node):
            key = self.loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            child = (*path, str(key))
            if not explicit:
                if _text_key(child) not in self.lines:
                    self._record(child, line, value_node)
                continue
            try:
                first = first_seen.get(key)
            except TypeError:  # an unhashable key: construction reports it
                continue
            if first is not None:
                where = format_loc(child)
                raise self.error(
                    located(self.origin, line, f"{where}: duplicate key (first at line {first})")
                )
            first_seen[key] = line
            self._record(child, line, value_node)

    def _record(self, loc: Loc, line: int, node: yaml.Node) -> None:
        self.lines[_text_key(loc)] = line
        self.locs.setdefault(id(node), loc)
        self.walk(node, loc)


def _text_key(loc: Loc) -> tuple[str, ...]:
    return tuple(str(part) for part in loc)


def _entries(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node, bool]]:
    """Key and value nodes: the mapping's own first, then those merged in by ``<<``."""
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            merged.append(value_node)
        else:
            yield key_node, value_node, True
    for source in merged:
        mappings = source.value if isinstance(source, yaml.SequenceNode) else [source]
        for mapping in mappings:
            if isinstance(mapping, yaml.MappingNode):
                for key_node, value_node, _ in _entries(mapping):
                    yield key_node, value_node, False


def _marked_message(origin: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "malformed YAML"
    if exc.problem and exc.context:
        context_mark = exc.context_mark
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            problem += f" ({exc.context} at line {context_mark.line + 1})"
        else:
            problem += f" ({exc.context})"
    return located(origin, mark.line + 1 if mark else None, f"malformed YAML: {problem}")


def _reader_problem(exc: yaml.reader.ReaderError) -> str:
    if isinstance(exc.character, int):
        return f"{exc.reason} #x{exc.character:04x}"
    return str(exc.reason)


def _data_loc(data: Any, loc: Sequence[str | int], *, missing: bool) -> Loc:
    """The parts of ``loc`` that index into ``data``, plus the key that is ``missing``."""
    kept: list[str | int] = []
    current = data
    for position, part in enumerate(loc):
        if _indexes(current, part):
            current = current[part]
        elif not (missing and position == len(loc) - 1):
            continue
        kept.append(part)
    return tuple(kept)


def _indexes(data: Any, part: str | int) -> bool:
    if isinstance(data, Mapping):
        return part in data
    return isinstance(data, list) and isinstance(part, int) and -len(data) <= part < len(data)


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "expected a mapping"
    if kind == "list_type":
        return "expected a list"
    if kind in ("value_error", "assertion_error"):
        cause = error.get("ctx", {}).get("error")
        if cause is not None:
            return str(cause)
    text = error["msg"]
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


__all__ = [
    "MAX_INT",
    "MAX_VALUES",
    "Loc",
    "YamlDocument",
    "format_loc",
    "gc_paused",
    "parse_yaml",
    "read_yaml",
    "validation_messages",
]
