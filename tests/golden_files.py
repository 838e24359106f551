"""Golden files: compare output with tests/golden/NAME; HAPROTECT_UPDATE_GOLDEN=1 rewrites."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden_text(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HAPROTECT_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with HAPROTECT_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from the golden file (HAPROTECT_UPDATE_GOLDEN=1)"


def check_golden(name: str, data: Any) -> None:
    check_golden_text(name, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
