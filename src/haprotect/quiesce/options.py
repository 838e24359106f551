"""Reading a spec's options with one-line errors that name the tier and the option.

Options come from a policy file, so every value is checked for its type
here, once, and a wrong one says so: ``command of tier web: option 'pre'
must be an argument list (a list of strings), not a string``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from haprotect.errors import QuiesceError
from haprotect.lease import Lease
from haprotect.quiesce.base import QuiesceSpec


def fail(spec: QuiesceSpec, message: str, hint: str | None = None) -> QuiesceError:
    """A QuiesceError that names the spec: ``<kind> of tier <tier>: <message>``."""
    return QuiesceError(f"{spec.label}: {message}", hint=hint)


def known(spec: QuiesceSpec, names: Sequence[str]) -> None:
    """Reject options the quiescer does not know (a typo must not be ignored)."""
    unknown = sorted(set(spec.options) - set(names))
    if unknown:
        raise fail(spec, f"unknown option {unknown[0]!r} (known: {', '.join(sorted(names))})")


def string(spec: QuiesceSpec, name: str, default: str | None = None) -> str:
    value = spec.options.get(name, default)
    if value is None:
        raise fail(spec, f"option {name!r} is required")
    if not isinstance(value, str) or not value:
        raise fail(spec, f"option {name!r} must be a non-empty string")
    return value


def optional_string(spec: QuiesceSpec, name: str) -> str | None:
    return string(spec, name) if spec.options.get(name) is not None else None


def number(spec: QuiesceSpec, name: str, default: float, *, minimum: float = 0.0) -> float:
    value = spec.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fail(spec, f"option {name!r} must be a number")
    try:
        result = float(value)
    except ValueError:
        raise fail(spec, f"option {name!r} must be a number, not {value!r}") from None
    if not math.isfinite(result) or result < minimum:
        raise fail(spec, f"option {name!r} must be at least {minimum:g}")
    return result


def boolean(spec: QuiesceSpec, name: str, default: bool) -> bool:
    value = spec.options.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "on", "false", "no", "off"):
        return value.lower() in ("true", "yes", "on")
    raise fail(spec, f"option {name!r} must be true or false")


def choice(spec: QuiesceSpec, name: str, choices: Sequence[str], default: str) -> str:
    value = string(spec, name, default)
    if value not in choices:
        raise fail(spec, f"option {name!r} must be one of {', '.join(choices)}, not {value!r}")
    return value


def argv(spec: QuiesceSpec, name: str) -> list[str] | None:
    """An argument list, never a shell string (which would need quoting we cannot trust)."""
    value = spec.options.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        raise fail(
            spec,
            f"option {name!r} must be an argument list (a list of strings), not a string",
            hint=f'write {name}: ["/path/to/program", "arg"]; '
            'for a shell, ["/bin/sh", "-c", "..."] explicitly',
        )
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(a, str) for a in value)
        or not value[0]
    ):
        raise fail(spec, f"option {name!r} must be a non-empty list of strings")
    return [str(a) for a in value]


def renew_held(spec: QuiesceSpec, lease: Lease | None) -> None:
    """Renew the lease of ``spec``'s hold to ``spec.lease_seconds``; refuse if none is held."""
    if lease is None:
        raise fail(spec, "not held, so there is no lease to renew")
    lease.renew(spec.lease_seconds)
