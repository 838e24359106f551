"""A notification: what happened (its kind), a subject line, a text and named fields.

The same record goes to every target: a webhook receives :func:`payload` as
JSON, an e-mail has the subject (after a prefix) and the text, followed by
the fields one per line. Builders for the three kinds the service sends are
in :mod:`.messages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

#: The version of the JSON a webhook receives (``"version"`` in :func:`payload`).
PAYLOAD_VERSION = 1


class Kind(StrEnum):
    """What a notification is about."""

    FAILURE = "failure"  #: a run failed, partially failed or was interrupted
    RPO_BREACH = "rpo_breach"  #: a data set's last complete set is older than its schedule allows
    DRIFT = "drift"  #: the cluster has HA data the policy does not cover, or changed
    TEST = "test"  #: sent on request, to try the targets


def _no_fields() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification; ``fields`` are short named values (job, data set, set id...)."""

    kind: Kind
    subject: str
    text: str
    fields: Mapping[str, str] = field(default_factory=_no_fields)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if "\n" in self.subject or "\r" in self.subject:
            raise ValueError(f"a notification's subject is one line: {self.subject!r}")
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))


def payload(notification: Notification) -> dict[str, object]:
    """The JSON object a webhook receives."""
    return {
        "version": PAYLOAD_VERSION,
        "source": "haprotect",
        "kind": notification.kind.value,
        "subject": notification.subject,
        "text": notification.text,
        "fields": dict(notification.fields),
        "at": notification.at.isoformat(),
    }
