"""A parser for main.cf, VCS's configuration language.

Grammar (what ``hacf -verify`` reads; white space and comments are free)::

    file       := statement*
    statement  := "include" STRING
                | "cluster" NAME "(" attribute* ")"
                | "system" NAME "(" attribute* ")"
                | "remotecluster" NAME "(" attribute* ")"
                | "heartbeat" NAME "(" attribute* ")"
                | "type" NAME "(" declaration* ")"
                | "group" NAME "(" attribute* ")" group_item*
    group_item := TYPE NAME "(" attribute* ")"               a resource
                | NAME "requires" NAME                       a resource link
                | "requires" "group" NAME WORD+              a group dependency
    attribute  := NAME ["@" SYSTEM] "=" value
    value      := WORD | STRING | "{" [item ("," item)*] "}"
    item       := scalar | scalar "=" scalar                 a list or an association
    declaration:= ["static"] ["temp"] TYPE NAME ["[]" | "{}"] ["=" value]

Values are redacted as they are stored (:mod:`haprotect.sources.vcs.secrets`).
Errors are one line naming the file and line; a word met inside a value is
not quoted in them (it may be a password hash).
"""

from __future__ import annotations

from collections.abc import Callable

from haprotect.sources.vcs.config import (
    Attributes,
    GroupDependency,
    MainCf,
    ServiceGroup,
    Value,
    VcsResource,
    Where,
)
from haprotect.sources.vcs.lexer import Kind, Token, config_error, tokenize
from haprotect.sources.vcs.secrets import redact_attribute

#: Reads an included file: (name as written, including file) -> (origin, text), or
#: None when it does not exist.
IncludeLoader = Callable[[str, str], tuple[str, str] | None]

TOP_LEVEL = ("include", "cluster", "system", "group", "type", "remotecluster", "heartbeat")
DEPENDENCY_WORDS = {
    "category": ("online", "offline"),
    "location": ("local", "global", "remote"),
    "kind": ("soft", "firm", "hard"),
}
MAX_INCLUDE_DEPTH = 16


def parse_main_cf(text: str, origin: str, load: IncludeLoader | None = None) -> MainCf:
    """Parse ``text`` (read from ``origin``) and the files it includes into a :class:`MainCf`."""
    config = MainCf(origin)
    _Parser(config, load, seen={origin}, depth=0).parse(text, origin)
    _check_references(config)
    return config


class _Parser:
    def __init__(self, config: MainCf, load: IncludeLoader | None, seen: set[str], depth: int):
        self.config = config
        self.load = load
        self.seen = seen
        self.depth = depth
        self.tokens: list[Token] = []
        self.pos = 0
        self.origin = ""

    # -- tokens --------------------------------------------------------------

    def parse(self, text: str, origin: str) -> None:
        self.tokens = tokenize(text, origin)
        self.pos = 0
        self.origin = origin
        while self.peek().kind is not Kind.END:
            self.statement()

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def error(self, token: Token, message: str) -> Exception:
        return config_error(self.origin, token.line, message)

    def expect_punct(self, text: str, context: str) -> Token:
        token = self.next()
        if not token.is_punct(text):
            raise self.error(token, f"expected {text!r} {context}, found {_show(token)}")
        return token

    def name(self, what: str) -> Token:
        token = self.next()
        if token.kind is Kind.STRING and token.text:
            return token
        if token.kind is not Kind.WORD:
            raise self.error(token, f"expected {what}, found {_show(token)}")
        return token

    def where(self, token: Token) -> Where:
        return Where(self.origin, token.line)

    # -- statements ----------------------------------------------------------

    def statement(self) -> None:
        keyword = self.next()
        if keyword.kind is not Kind.WORD or keyword.text not in TOP_LEVEL:
            raise self.error(
                keyword,
                f"expected include, cluster, system, group or type, found {_show(keyword)}",
            )
        if keyword.text == "include":
            self.include(keyword)
            return
        name = self.name(f"a {keyword.text} name")
        if keyword.text == "type":
            self.type_definition(name)
            return
        attrs = self.attributes(f"{keyword.text} {name.text}")
        if keyword.text == "cluster":
            if self.config.cluster_name not in (None, name.text):
                raise self.error(name, f"a second cluster {name.text!r}")
            self.config.cluster_name = name.text
            self.config.cluster_attrs = attrs
        elif keyword.text == "system":
            if name.text not in self.config.systems:
                self.config.systems.append(name.text)
        elif keyword.text == "group":
            self.group(name, attrs)

    def include(self, keyword: Token) -> None:
        token = self.next()
        if token.kind is not Kind.STRING or not token.text:
            raise self.error(
                token, f"expected a quoted file name after include, found {_show(token)}"
            )
        if self.load is None:
            self.config.missing_includes.append(token.text)
            return
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise self.error(keyword, f"includes nested more than {MAX_INCLUDE_DEPTH} deep")
        found = self.load(token.text, self.origin)
        if found is None:
            self.config.missing_includes.append(token.text)
            return
        origin, text = found
        if origin in self.seen:
            return
        self.seen.add(origin)
        _Parser(self.config, self.load, self.seen, self.depth + 1).parse(text, origin)

    def group(self, name: Token, attrs: Attributes) -> None:
        if name.text in self.config.groups:
            raise self.error(name, f"group {name.text!r} is defined twice")
        group = ServiceGroup(name.text, attrs, self.where(name))
        self.config.groups[name.text] = group
        while True:
            head = self.peek()
            if head.kind is Kind.END or (head.kind is Kind.WORD and head.text in TOP_LEVEL):
                return
            if head.is_word("requires") and self.peek(1).is_word("group"):
                self.group_dependency(group)
            elif head.kind is Kind.WORD and self.peek(1).is_word("requires"):
                self.pos += 2
                target = self.name("the resource it requires")
                group.links.append((head.text, target.text, self.where(head)))
            else:
                self.resource(group)

    def group_dependency(self, group: ServiceGroup) -> None:
        start = self.next()
        self.next()
        child = self.name("the group it requires")
        found: dict[str, str] = {}
        for slot, words in DEPENDENCY_WORDS.items():
            token = self.peek()
            if token.kind is Kind.WORD and token.text in words:
                found[slot] = token.text
                self.pos += 1
        if "category" not in found or "location" not in found:
            raise self.error(
                start,
                f"requires group {child.text} needs online or offline, then local, "
                "global or remote (and soft, firm or hard)",
            )
        self.config.group_dependencies.append(
            GroupDependency(
                group.name,
                child.text,
                found["category"],
                found["location"],
                found.get("kind", ""),
                self.where(start),
            )
        )

    def resource(self, group: ServiceGroup) -> None:
        type_token = self.name("a resource type, a link or the next group")
        name = self.name(f"a name for the {type_token.text} resource")
        attrs = self.attributes(f"resource {name.text}")
        if name.text in self.config.resources:
            raise self.error(name, f"resource {name.text!r} is defined twice")
        self.config.resources[name.text] = VcsResource(
            type_token.text, name.text, group.name, attrs, self.where(type_token)
        )
        group.resources.append(name.text)

    # -- attributes ----------------------------------------------------------

    def attributes(self, owner: str) -> Attributes:
        self.expect_punct("(", f"after {owner}")
        values: dict[str, Value] = {}
        per_system: dict[str, dict[str, Value]] = {}
        while not self.peek().is_punct(")"):
            name = self.name(f"an attribute of {owner} or ')'")
            system: str | None = None
            if self.peek().is_punct("@"):
                self.pos += 1
                system = self.name(f"a system after {name.text}@").text
            self.expect_punct("=", f"after attribute {name.text}")
            value = redact_attribute(name.text, self.value(name.text))
            if system is None:
                if name.text in values:
                    raise self.error(name, f"attribute {name.text} of {owner} is set twice")
                values[name.text] = value
            else:
                local = per_system.setdefault(name.text, {})
                if system in local:
                    raise self.error(
                        name, f"attribute {name.text}@{system} of {owner} is set twice"
                    )
                local[system] = value
        self.pos += 1
        return Attributes(values, per_system)

    def value(self, attribute: str) -> Value:
        token = self.next()
        if token.kind in (Kind.WORD, Kind.STRING):
            return token.text
        if not token.is_punct("{"):
            raise self.error(token, f"expected the value of {attribute}, found {_kind(token)}")
        items: list[str] = []
        pairs: dict[str, str] = {}
        while not self.peek().is_punct("}"):
            key = self.scalar(attribute)
            if self.peek().is_punct("="):
                self.pos += 1
                if items:
                    raise self.error(key, f"the value of {attribute} mixes a list and key = value")
                pairs[key.text] = self.scalar(attribute).text
            else:
                if pairs:
                    raise self.error(key, f"the value of {attribute} mixes a list and key = value")
                items.append(key.text)
            if self.peek().is_punct(","):
                self.pos += 1
        self.pos += 1
        return pairs if pairs else tuple(items)

    def scalar(self, attribute: str) -> Token:
        token = self.next()
        if token.kind not in (Kind.WORD, Kind.STRING):
            raise self.error(
                token, f"expected an item of {attribute}'s value, found {_kind(token)}"
            )
        return token

    # -- type definitions (types.cf) -----------------------------------------

    def type_definition(self, name: Token) -> None:
        self.expect_punct("(", f"after type {name.text}")
        declared: set[str] = set()
        while not self.peek().is_punct(")"):
            words: list[Token] = []
            while self.peek().kind is Kind.WORD and self.peek().text in (
                "static",
                "temp",
                "global",
            ):
                words.append(self.next())
            self.name(f"an attribute type in type {name.text}")
            attribute = self.name(f"an attribute name in type {name.text}")
            declared.add(attribute.text)
            for opening, closing in (("[", "]"), ("{", "}")):
                if self.peek().is_punct(opening):
                    self.pos += 1
                    self.expect_punct(closing, f"after {attribute.text}{opening}")
            if self.peek().is_punct("="):
                self.pos += 1
                self.value(attribute.text)
        self.pos += 1
        self.config.types[name.text] = frozenset(declared)


def _check_references(config: MainCf) -> None:
    for group in config.groups.values():
        for source, target, where in group.links:
            for resource in (source, target):
                found = config.resources.get(resource)
                if found is None:
                    raise config_error(
                        where.file, where.line, f"link {source} requires {target}: "
                        f"no resource {resource!r} in group {group.name}"
                    )  # fmt: skip
                if found.group != group.name:
                    raise config_error(
                        where.file, where.line, f"link {source} requires {target}: "
                        f"{resource} is in group {found.group}, not {group.name}"
                    )  # fmt: skip
    for dependency in config.group_dependencies:
        if dependency.child not in config.groups:
            where = dependency.where
            message = f"group {dependency.parent} requires undefined group {dependency.child}"
            raise config_error(where.file, where.line, message)
    _check_cycles(config)


def _check_cycles(config: MainCf) -> None:
    """Group dependencies form no cycle (VCS refuses one): the error names the closing one."""
    needs: dict[str, list[GroupDependency]] = {}
    for dependency in config.group_dependencies:
        needs.setdefault(dependency.parent, []).append(dependency)
    done: set[str] = set()
    for start in config.groups:
        if start in done:
            continue
        path = [start]
        stack = [(start, iter(needs.get(start, ())))]
        while stack:
            group, pending = stack[-1]
            step = next(pending, None)
            if step is None:
                stack.pop()
                path.pop()
                done.add(group)
                continue
            child = step.child
            if child in path:
                cycle = " -> ".join([*path[path.index(child) :], child])
                where = step.where
                raise config_error(where.file, where.line, f"group dependency cycle: {cycle}")
            if child not in done:
                path.append(child)
                stack.append((child, iter(needs.get(child, ()))))


def _show(token: Token) -> str:
    if token.kind is Kind.WORD:
        shown = token.text if len(token.text) <= 40 else token.text[:37] + "..."
        return repr(shown)
    if token.kind is Kind.PUNCT:
        return repr(token.text)
    return _kind(token)


def _kind(token: Token) -> str:
    return {
        Kind.WORD: "a word",
        Kind.STRING: "a string",
        Kind.PUNCT: repr(token.text),
        Kind.END: "the end of the file",
    }[token.kind]
