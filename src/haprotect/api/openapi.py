"""The OpenAPI document, from the code: ``python -m haprotect.api.openapi [FILE]``.

docs/api/openapi.json is written by this module (a test holds the file to
the code), so the API reference is the code's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from haprotect.api.app import build_app


def document() -> dict[str, Any]:
    return build_app().openapi()


def document_text() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = document_text()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
