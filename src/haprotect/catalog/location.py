"""Where the catalog is: ``--catalog``, else $HAPROTECT_CATALOG, else the service's config.

The service's config file is $HAPROTECT_CONFIG, else
``/etc/haprotect/service.yaml`` when it exists; its ``catalog`` key is the
URL, and its ``state_dir`` key the state directory. Without any of these the
catalog is ``sqlite:///<state dir>/catalog.db``, the state directory being
$HAPROTECT_STATE_DIR, else ``/var/lib/haprotect``. The CLI and the service
both ask :func:`find_catalog`, so they always open the same catalog.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haprotect.errors import InputError, located

CATALOG_ENV = "HAPROTECT_CATALOG"
CONFIG_ENV = "HAPROTECT_CONFIG"
STATE_DIR_ENV = "HAPROTECT_STATE_DIR"
DEFAULT_CONFIG = Path("/etc/haprotect/service.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/haprotect")
CATALOG_FILE = "catalog.db"


@dataclass(frozen=True, slots=True)
class CatalogLocation:
    """The catalog's URL and what chose it (for messages: ``$HAPROTECT_CATALOG``...)."""

    url: str
    origin: str


def find_catalog(
    explicit: str | None = None, env: Mapping[str, str] | None = None
) -> CatalogLocation:
    """The catalog to open (see the module for the order)."""
    env = os.environ if env is None else env
    if explicit:
        return CatalogLocation(explicit, "--catalog")
    if env.get(CATALOG_ENV):
        return CatalogLocation(env[CATALOG_ENV], f"${CATALOG_ENV}")
    config_path = config_file(env)
    config = _read_config(config_path) if config_path is not None else {}
    if config.get("catalog"):
        return CatalogLocation(str(config["catalog"]), str(config_path))
    state = state_dir(env, config)
    return CatalogLocation(f"sqlite:///{state / CATALOG_FILE}", "the default")


def config_file(env: Mapping[str, str] | None = None) -> Path | None:
    """The service's config file: $HAPROTECT_CONFIG (it must exist), else the default if present."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def state_dir(
    env: Mapping[str, str] | None = None, config: Mapping[str, Any] | None = None
) -> Path:
    """The state directory: $HAPROTECT_STATE_DIR, else the config's state_dir, else the default."""
    env = os.environ if env is None else env
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    if config and config.get("state_dir"):
        return Path(str(config["state_dir"]))
    return DEFAULT_STATE_DIR


def _read_config(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(
            located(str(path), None, f"cannot read the service config: {exc.strerror}"),
            hint=f"unset ${CONFIG_ENV} or create the file",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(located(str(path), line, "not valid YAML")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(located(str(path), None, "expected a mapping (catalog:, state_dir:, ...)"))
    for key in ("catalog", "state_dir"):
        if key in data and not isinstance(data[key], str):
            raise InputError(located(str(path), None, f"{key}: expected a string"))
    return data
