"""The engine names no kind of data: every kind's cut lives in its mover."""

from __future__ import annotations

import re
from pathlib import Path

import haprotect.engine

ENGINE = Path(haprotect.engine.__file__).parent
#: a kind of data, a mover's own module, or any module of the movers' package
NAMES = re.compile(r"postgres|pgcheck|pgreplay|cut_files|movers\.")


def test_no_engine_line_names_a_kind_of_data_or_a_movers_module() -> None:
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(ENGINE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if NAMES.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
