"""Reading and writing policy files.

A policy is written as block YAML with short lists in flow style, a comment
header, and no anchors, so that it reads and edits well; JSON (``--json``) is
the same data. Reading composes the YAML with line marks, validates it with
the pydantic schema and its cross-checks, and converts it to the model: every
error is one :class:`~haprotect.errors.PolicyError` line naming the file, the
line and the field
(through :mod:`haprotect.yamlsource`, shared by every YAML edge).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from haprotect.errors import InputError, PolicyError, located
from haprotect.model.policy import Policy
from haprotect.policy.document import from_doc, to_data
from haprotect.policy.schema import PolicyDoc, problems
from haprotect.yamlsource import YamlDocument, gc_paused, parse_yaml, read_yaml

_FLOW_LIST_MAX = 8


# libyaml's emitter when PyYAML was built with it: ten times faster on large policies.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = 0 < len(data) <= _FLOW_LIST_MAX and all(isinstance(v, str | int) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_datetime(dumper: yaml.SafeDumper, data: datetime) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", data.isoformat())


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(datetime, _represent_datetime)


def dump_yaml(data: Any) -> str:
    """Block YAML in the given key order, lines never folded."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        width=10_000,
        allow_unicode=True,
    )


def dump_policy(policy: Policy) -> str:
    """The policy as the YAML an administrator reviews (with a header saying where it came
    from and how to check it)."""
    source = " ".join(policy.metadata.source.split())
    header = (
        f"# haprotect policy generated from {source}\n"
        "# Review and edit it; `haprotect validate FILE` checks it and\n"
        "# `haprotect explain FILE` shows why each item is protected as it is.\n"
    )
    return header + dump_yaml(to_data(policy))


def policy_json(policy: Policy) -> str:
    return json.dumps(to_data(policy), indent=2, default=_json_default) + "\n"


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def parse_policy(text: str, origin: str) -> Policy:
    """Validate a policy document; ``origin`` names it in errors."""
    return policy_from_document(parse_yaml(text, origin, error=PolicyError))


def load_policy(path: Path) -> Policy:
    """A policy file, validated (a :class:`~haprotect.errors.PolicyError` names the line)."""
    return policy_from_document(read_yaml(path, error=PolicyError))


def policy_from_document(doc: YamlDocument) -> Policy:
    if doc.data is not None and not isinstance(doc.data, dict):
        raise doc.error_at((), "expected a mapping with apiVersion, kind, metadata and spec")
    with gc_paused():  # tens of thousands of objects that all live on
        return _checked_policy(doc)


def _checked_policy(doc: YamlDocument) -> Policy:
    validated = doc.validate(PolicyDoc)
    found = problems(validated)
    if found:
        loc, message = min(found, key=lambda p: doc.line_of(p[0]) or 0)
        more = len(found) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise doc.error_at(loc, message + suffix)
    return from_doc(validated)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader never sees half a file)."""
    tmp: str | None = None
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(located(str(path), None, f"cannot write: {exc.strerror}")) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
