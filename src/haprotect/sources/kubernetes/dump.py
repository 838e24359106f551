"""Objects saved by ``kubectl get -o json``: a List, one object, or several in a row."""

from __future__ import annotations

import json
from pathlib import Path

from haprotect.errors import ClusterConfigError, InputError, located


def read_dump(path: Path) -> list[object]:
    """The JSON documents of ``path``, in order (InputError naming the file if it has none)."""
    origin = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"{origin}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ClusterConfigError(
            located(origin, None, f"not UTF-8 text (byte {exc.start})")
        ) from None
    decoder = json.JSONDecoder()
    documents: list[object] = []
    position = _skip_space(text, 0)
    while position < len(text):
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ClusterConfigError(
                located(origin, exc.lineno, f"not JSON: {exc.msg} (column {exc.colno})")
            ) from None
        except (ValueError, RecursionError) as exc:
            raise ClusterConfigError(
                located(origin, None, f"not JSON kubectl could print: {type(exc).__name__}")
            ) from None
        documents.append(document)
        position = _skip_space(text, position)
    if not documents:
        raise ClusterConfigError(located(origin, None, "holds no objects (an empty file)"))
    return documents


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n\ufeff":
        position += 1
    return position
