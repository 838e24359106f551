"""Integration fixtures: real components, started by the project's own code."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator

import pytest
from tests.conftest import require_component

from haprotect.errors import ComponentError
from haprotect.pgtools import find_postgres, server_user
from haprotect.testing.seaweedfs import SeaweedFS, find_weed, running_seaweedfs


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 server on loopback for the whole session.

    The AWS_* variables point boto3 at it (and nowhere else) for the
    session, so ``open_store(seaweedfs.url(...))`` works as a user's would.
    """
    weed = find_weed()
    require_component("SeaweedFS (weed)", weed is not None, "scripts/bootstrap installs it")
    require_component(
        "boto3", importlib.util.find_spec("boto3") is not None, "scripts/bootstrap installs it"
    )
    with running_seaweedfs(weed=weed) as server, pytest.MonkeyPatch.context() as env:
        for name, value in server.env().items():
            env.setenv(name, value)
        yield server


@pytest.fixture(scope="session")
def s3_url(seaweedfs: SeaweedFS) -> str:
    """An ``s3://`` URL of an empty prefix in the session's bucket."""
    return seaweedfs.url(f"session-{time.time_ns()}")


def require_postgres() -> None:
    """PostgreSQL's server binaries and the user to run them as, or skip (fail under CI)."""
    try:
        find_postgres()
        server_user()
        missing = ""
    except ComponentError as exc:
        missing = exc.message
    require_component(
        f"PostgreSQL server binaries ({missing})" if missing else "PostgreSQL",
        not missing,
        "scripts/bootstrap installs Debian's postgresql package",
    )
