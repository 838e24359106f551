"""The repository config blob: format version and the parameters every writer shares.

``config`` is plain JSON so that the version can be checked, and the
repository recognised, before a passphrase is asked for. It holds no secret.
It carries a MAC keyed from the master key, checked once the repository is
unlocked, so a changed config is detected too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from haprotect.redact import display_url
from haprotect.repo.errors import IntegrityError, RepositoryNotFound, UnsupportedVersion
from haprotect.storage.base import BlobNotFound, BlobStore

if TYPE_CHECKING:
    from haprotect.repo.format.crypto import MasterKey

FORMAT_NAME = "haprotect-repository"
FORMAT_VERSION = 1
CONFIG_KEY = "config"

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True)
class ChunkerParams:
    """How files are cut into chunks (see docs/design/repository-format.md).

    Content-defined (FastCDC 2020, normalisation level 1) with ``min_size``,
    ``avg_size`` (the mask size; the mean chunk is about ``min + avg``) and
    ``max_size``, except for page-structured files: those at least
    ``fixed_min_file`` long whose size is a multiple of ``page_size`` are cut
    into fixed blocks of ``fixed_block`` bytes (grown by powers of two so that
    no file has more than ``max_blocks`` blocks).
    """

    min_size: int = 256 * KiB
    avg_size: int = 1 * MiB
    max_size: int = 4 * MiB
    fixed_block: int = 64 * KiB
    fixed_min_file: int = 1 * MiB
    page_size: int = 4 * KiB
    max_blocks: int = 1 << 18
    tree_min_size: int = 16 * KiB
    tree_avg_size: int = 64 * KiB
    tree_max_size: int = 256 * KiB


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """The contents of the config blob: the repository's id, format version and write parameters."""

    id: str
    created: str
    version: int = FORMAT_VERSION
    chunker: ChunkerParams = field(default_factory=ChunkerParams)
    pack_size: int = 16 * MiB
    compression_level: int = 3

    @classmethod
    def new(
        cls, *, chunker: ChunkerParams | None = None, pack_size: int = 16 * MiB, level: int = 3
    ) -> RepoConfig:
        return cls(
            id=os.urandom(32).hex(),
            created=datetime.now(UTC).isoformat(),
            chunker=chunker or ChunkerParams(),
            pack_size=pack_size,
            compression_level=level,
        )

    def _body(self) -> dict[str, Any]:
        body = asdict(self)
        body["format"] = FORMAT_NAME
        return body

    def dump(self, key: MasterKey) -> bytes:
        body = self._body()
        body["mac"] = key.config_mac(_canonical(body))
        return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"

    def verify(self, key: MasterKey, mac: str, url: str) -> None:
        if key.config_mac(_canonical(self._body())) != mac:
            raise IntegrityError(
                f"the config of repository {url} was modified",
                hint="restore the config blob from a copy of the repository",
            )


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def read_config(store: BlobStore) -> tuple[RepoConfig, str]:
    """The config of the repository in ``store`` and its MAC (see :func:`parse_config`)."""
    try:
        raw = store.get(CONFIG_KEY)
    except BlobNotFound:
        raise RepositoryNotFound(
            f"no haprotect repository at {display_url(store.url)}",
            hint="check the URL, or create one with `haprotect repo init URL`",
        ) from None
    return parse_config(raw, display_url(store.url))


def parse_config(blob: bytes, url: str) -> tuple[RepoConfig, str]:
    """The config and its MAC; refuses other formats and newer versions."""
    try:
        body: dict[str, Any] = json.loads(blob)
    except ValueError:
        raise RepositoryNotFound(
            f"{url} is not a haprotect repository (unreadable config)"
        ) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT_NAME:
        raise RepositoryNotFound(f"{url} is not a haprotect repository")
    version = body.get("version")
    if not isinstance(version, int) or version < 1:
        raise IntegrityError(f"repository {url} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise UnsupportedVersion(
            f"repository {url} uses format version {version}; this haprotect supports up to "
            f"{FORMAT_VERSION}",
            hint="upgrade haprotect to open this repository",
        )
    try:
        config = RepoConfig(
            id=str(body["id"]),
            created=str(body["created"]),
            version=version,
            chunker=ChunkerParams(**body["chunker"]),
            pack_size=int(body["pack_size"]),
            compression_level=int(body["compression_level"]),
        )
        return config, str(body["mac"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"the config of repository {url} is malformed ({exc})") from None
