"""What the dispatcher sends to: a target takes a notification or raises :class:`DeliveryError`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from haprotect.errors import ComponentError
from haprotect.redact import REDACTED, redact_text
from haprotect.service.notify.notification import Kind, Notification


class DeliveryError(ComponentError):
    """A target did not take a notification; the message names the target, never a secret."""


class Target(Protocol):
    """A place notifications go: ``name`` for logs, the ``kinds`` it wants."""

    name: str
    kinds: frozenset[Kind]

    def send(self, notification: Notification) -> None:
        """Deliver ``notification`` (retrying as the target sees fit) or raise DeliveryError."""

    def close(self) -> None:
        """Release connections; the target is not used after."""


def scrubbed(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets``, and any credential it carries, replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return redact_text(text)
