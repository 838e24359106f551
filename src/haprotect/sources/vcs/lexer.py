"""Tokens of VCS's configuration language (main.cf, types.cf).

Words (names, numbers and unquoted values), double-quoted strings (with
``\\"`` and ``\\\\`` escapes), and the punctuation ``( ) { } [ ] = , @``.
Comments (``// ...`` to the end of the line, ``/* ... */``) and white space
separate tokens and are dropped. Every token keeps its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from haprotect.errors import ClusterConfigError, located


class Kind(Enum):
    WORD = "word"
    STRING = "string"
    PUNCT = "punctuation"
    END = "end of file"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    line: int

    def is_punct(self, text: str) -> bool:
        return self.kind is Kind.PUNCT and self.text == text

    def is_word(self, text: str) -> bool:
        return self.kind is Kind.WORD and self.text == text


PUNCTUATION = "(){}[]=,@"
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"""[^\s(){}\[\]=,@"]+""")


def config_error(origin: str, line: int | None, message: str) -> ClusterConfigError:
    """A one-line error naming the file and line (control characters shown escaped)."""
    text = located(origin, line, message)
    return ClusterConfigError("".join(_printable(c) for c in text))


def _printable(char: str) -> str:
    return char if char.isprintable() else char.encode("unicode_escape").decode("ascii")


def tokenize(text: str, origin: str) -> list[Token]:
    """The tokens of ``text``, ending with an END token."""
    tokens: list[Token] = []
    pos, line, size = 0, 1, len(text)
    while pos < size:
        char = text[pos]
        if char.isspace():
            found = _SPACE.match(text, pos)
            assert found is not None
            line += found.group().count("\n")
            pos = found.end()
        elif text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = size if end < 0 else end
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if end < 0:
                raise config_error(origin, line, "comment opened with /* is never closed")
            line += text.count("\n", pos, end)
            pos = end + 2
        elif char == '"':
            value, end = _string(text, pos, origin, line)
            tokens.append(Token(Kind.STRING, value, line))
            line += text.count("\n", pos, end)
            pos = end
        elif char in PUNCTUATION:
            tokens.append(Token(Kind.PUNCT, char, line))
            pos += 1
        else:
            found = _WORD.match(text, pos)
            assert found is not None
            word = found.group()
            cut = _comment_start(word)
            if cut is not None:
                word = word[:cut]
            tokens.append(Token(Kind.WORD, word, line))
            pos += len(word)
    tokens.append(Token(Kind.END, "", line))
    return tokens


def _comment_start(word: str) -> int | None:
    """Where a comment begins inside a run of word characters (``abc//x``), if it does."""
    cuts = [i for i in (word.find("//"), word.find("/*")) if i > 0]
    return min(cuts) if cuts else None


def _string(text: str, start: int, origin: str, line: int) -> tuple[str, int]:
    out: list[str] = []
    pos = start + 1
    size = len(text)
    while pos < size:
        char = text[pos]
        if char == "\\" and pos + 1 < size:
            out.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise config_error(origin, line, 'string opened with " is never closed')
