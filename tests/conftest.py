"""Shared fixtures: the corpus, and real components that must not silently skip."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from haprotect.testing.pgserver import TemporaryPostgres

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = Path(__file__).resolve().parent / "golden"


def corpus_dir() -> Path | None:
    """The shared corpus of real cluster configurations, when present."""
    env = os.environ.get("HAPROTECT_CORPUS")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "corpus")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_component(what: str, present: bool, how: str) -> None:
    """Skip when a component is missing, but fail under CI=true."""
    if present:
        return
    message = f"{what} is missing ({how})"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def crm_mon() -> str:
    path = shutil.which("crm_mon")
    require_component("crm_mon", path is not None, "scripts/bootstrap installs pacemaker-cli-utils")
    assert path is not None
    return path


@pytest.fixture
def corpus() -> Path:
    path = corpus_dir()
    require_component("the shared corpus", path is not None, "set HAPROTECT_CORPUS")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    """A PostgreSQL server of this machine's, started for the session (bootstrap installs it)."""
    from haprotect.errors import ComponentError
    from haprotect.pgtools import find_postgres
    from haprotect.testing.pgserver import TemporaryPostgres

    try:
        find_postgres()
        found, why = True, ""
    except ComponentError as exc:
        found, why = False, exc.message
    require_component("PostgreSQL's server binaries", found, why or "scripts/bootstrap")
    with TemporaryPostgres() as server:
        yield server
