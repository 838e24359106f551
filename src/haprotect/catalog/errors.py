"""The catalog's errors: an unknown object, a change its state forbids, no database."""

from __future__ import annotations

from haprotect.errors import ComponentError, UsageError


class CatalogNotFound(UsageError):
    """No such policy, version, run or token (an API answers 404)."""


class CatalogConflict(UsageError):
    """The object is not in a state that allows the change (an API answers 409)."""


class CatalogUnavailable(ComponentError):
    """The catalog's database cannot be opened, reached or upgraded."""
