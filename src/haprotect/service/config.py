"""The service's configuration file, and the default that needs none.

Everything has a default: with no file at all, ``haprotect serve`` keeps its
catalog (SQLite) and its policies under the state directory, listens on
loopback, and reads each policy's repository with the password file given
by ``HAPROTECT_PASSWORD_FILE``. A file (``/etc/haprotect/service.yaml``, or
``$HAPROTECT_CONFIG``, or ``--config``) names the repositories and their
password files, the copy targets, limits, retries, maintenance schedules
and notification targets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from haprotect.catalog.location import CATALOG_FILE, DEFAULT_CONFIG, DEFAULT_STATE_DIR, state_dir
from haprotect.errors import InputError
from haprotect.policy.fields import Cron, Where
from haprotect.service.notify.config import NotificationsConfig
from haprotect.service.rpo import RpoConfig
from haprotect.yamlsource import read_yaml

DEFAULT_LISTEN = "127.0.0.1:8470"

Positive = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepositoryConfig(_Section):
    """A repository the service writes to: a policy's ``where``, or a copy target."""

    name: Annotated[str, Field(min_length=1)]
    url: Where
    password_file: Path | None = None


class Limits(_Section):
    """How many runs at once: in all, per repository, per node read from."""

    concurrent: Positive = 2
    per_repository: Positive = 1
    per_node: Positive = 1


class Retry(_Section):
    """A failed run is tried again after base, base x factor, ... up to cap.

    ``attempts`` counts the scheduled run and its retries; a retry never
    runs past the job's next fire.
    """

    attempts: Positive = 5
    base_seconds: Seconds = 60.0
    factor: Annotated[float, Field(ge=1)] = 2.0
    cap_seconds: Seconds = 3600.0


class Maintenance(_Section):
    """Prune under the exclusive lock, and read-data checks in rotating subsets."""

    prune: Cron = "0 3 * * 0"
    verify: Cron = "30 4 * * *"
    #: Every pack is read at least once in this many days.
    verify_period_days: Positive = 30


class Drift(_Section):
    """When the cluster is read again to find data the policy does not cover."""

    schedule: Cron = "*/15 * * * *"


class Tls(_Section):
    cert: Path
    key: Path


class ServiceConfig(_Section):
    """The whole file; every section may be left out."""

    state_dir: Path = DEFAULT_STATE_DIR
    catalog: str | None = None
    listen: str = DEFAULT_LISTEN
    tls: Tls | None = None
    #: Serve /metrics without a token (a scraper on a trusted network); else a viewer's token.
    metrics_open: bool = False
    #: How to reach the clusters' nodes (``haprotect backup --inventory``).
    inventory: Path | None = None
    #: Where movers stage data (``--staging``); default the state directory's ``staging``.
    staging: Path | None = None
    repositories: list[RepositoryConfig] = Field(default_factory=list)
    #: Names of repositories that copies go to, in order: ``copies: 3`` uses the first two.
    copy_targets: list[str] = Field(default_factory=list)
    limits: Limits = Limits()
    retry: Retry = Retry()
    maintenance: Maintenance = Maintenance()
    drift: Drift = Drift()
    notifications: NotificationsConfig = NotificationsConfig()
    rpo: RpoConfig = RpoConfig()
    #: Seconds between two looks at what is due.
    tick_seconds: Seconds = 5.0
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen {value!r}: expected HOST:PORT, such as {DEFAULT_LISTEN}")
        return value

    @property
    def catalog_url(self) -> str:
        """The catalog's database: the file's ``catalog``, else SQLite in the state directory."""
        return self.catalog or f"sqlite:///{self.state_dir / CATALOG_FILE}"

    def repository(self, url: str) -> RepositoryConfig:
        """The configured repository with this URL, or one known only by its URL."""
        for repo in self.repositories:
            if repo.url == url:
                return repo
        return RepositoryConfig(name=url, url=url, password_file=_default_password_file())

    def repository_named(self, name: str) -> RepositoryConfig:
        """The configured repository of this name (names are checked when the file is read)."""
        return next(r for r in self.repositories if r.name == name)

    def copy_repositories(self, copies: int, primary: str) -> list[RepositoryConfig]:
        """The ``copies - 1`` targets a set written to ``primary`` is copied to.

        Raises when there are not enough targets: a policy asking for more
        copies than the service can make is an error, not a silent shortfall.
        """
        by_name = {r.name: r for r in self.repositories}
        targets = [by_name[n] for n in self.copy_targets if by_name[n].url != primary]
        if copies - 1 > len(targets):
            raise InputError(
                f"the policy asks for {copies} copies but the service has "
                f"{len(targets)} copy target(s) besides {primary}",
                hint="add repositories to copy_targets in the service's configuration",
            )
        return targets[: copies - 1]

    def check_names(self) -> list[str]:
        """Problems between sections: unknown or repeated repository names."""
        problems = []
        names = [r.name for r in self.repositories]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"repository {name!r} is named twice")
        problems += [
            f"copy target {name!r} is not one of the repositories"
            for name in self.copy_targets
            if name not in names
        ]
        return problems


def _default_password_file() -> Path | None:
    value = os.environ.get("HAPROTECT_PASSWORD_FILE")
    return Path(value) if value else None


def config_path(explicit: Path | None = None, default: Path = DEFAULT_CONFIG) -> Path | None:
    """The file to read: ``--config``, else ``$HAPROTECT_CONFIG``, else ``default`` if present."""
    if explicit is not None:
        return explicit
    named = os.environ.get("HAPROTECT_CONFIG")
    if named:
        return Path(named)
    return default if default.exists() else None


def load_config(explicit: Path | None = None, default: Path = DEFAULT_CONFIG) -> ServiceConfig:
    """The service's configuration; the embedded default when there is no file."""
    path = config_path(explicit, default)
    if path is None:
        return ServiceConfig(state_dir=state_dir())
    config = read_yaml(path).validate(ServiceConfig)
    problems = config.check_names()
    if problems:
        raise InputError(f"{path}: {problems[0]}")
    return config
