"""Integration fixtures: real components, started by the project's own code."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require_component

from haprotect.errors import ComponentError
from haprotect.lab import Lab
from haprotect.model.policy import Policy
from haprotect.movers.postgres import stop_restored
from haprotect.pgtools import find_postgres, server_user
from haprotect.policy import default_rules, generate
from haprotect.repo import KdfParams, Repository
from haprotect.sources import DiscoverOptions, discover
from haprotect.storage import open_store
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


@dataclass
class LabEnv:
    """A lab up in a fresh directory, its generated policy, and an empty repository."""

    lab: Lab
    root: Path
    policy: Policy
    repo: Repository
    restored: list[Path] = field(default_factory=list)  #: data directories a restore started


def lab_policy(lab: Lab) -> Policy:
    """The policy generated, with the default rules, from the lab's CIB as it is now."""
    source = f"pacemaker+file://{lab.cib_path}"
    topology = discover(source, DiscoverOptions(use_cli=False))
    now = datetime.now(UTC).replace(microsecond=0)
    return generate(topology, default_rules(), source=source, now=now)


@contextmanager
def lab_env(prefix: str, **lab_options: Any) -> Iterator[LabEnv]:
    """Bring a lab up (orders stay buffered in the application until a flush), then down.

    Restored PostgreSQL servers listed in ``restored`` are stopped at the end.
    """
    require_postgres()
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    lab = Lab(root / "lab", **{"flush_interval": 3600.0, **lab_options})
    made: LabEnv | None = None
    try:
        lab.up()
        policy = lab_policy(lab)
        repo = Repository.init(open_store(f"file://{root}/repo"), "pw", kdf=KdfParams(n=1 << 10))
        made = LabEnv(lab, root, policy, repo)
        yield made
    finally:
        for pgdata in made.restored if made else []:
            stop_restored(pgdata)
        lab.down(purge=True)
        shutil.rmtree(root, ignore_errors=True)
