"""The contract of a quiescer: hold one tier still, then let it go.

A quiescer stops a tier from changing its data for as short a time as
possible (an HTTP gate queues requests, an application flushes its memory,
PostgreSQL checkpoints, a filesystem freezes, the cluster manager is told to
leave the tier alone) and resumes it afterwards. Safety rules:

- every hold has a timeout, and ``on_error`` says whether a failure to hold
  aborts the backup (``fail``) or is recorded and the run goes on
  (``continue``, ending PartiallyFailed);
- ``resume`` is always called, in ``finally``, even when ``hold`` failed;
- a hold is a lease: if the process that took it dies (kill -9), the tier
  releases itself when the lease expires, without anyone calling ``resume``.

Terms: a **spec** (:class:`QuiesceSpec`) is one quiescer of one tier as the
policy configures it; its :attr:`~QuiesceSpec.key` names one hold, so a
quiescer can keep per-hold state (an open PostgreSQL session, a lease
watchdog) between ``hold`` and ``resume`` and refuse a second hold of the
same target. ``validate`` checks a spec's options without any I/O, so a bad
policy fails before anything is held.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class OnError(StrEnum):
    """What a failure to hold does: abort the backup, or record it and go on."""

    FAIL = "fail"
    CONTINUE = "continue"


@dataclass(frozen=True, slots=True)
class QuiesceSpec:
    """One quiescer of one tier, as the policy configures it."""

    kind: str  #: registry name: "http-gate", "app-flush", "postgresql", "command", ...
    tier: str
    timeout_seconds: float = 30.0
    lease_seconds: float = 120.0
    on_error: OnError = OnError.FAIL
    #: The quiescer's own options (strings, numbers, booleans, argument lists).
    options: Mapping[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """What one hold is of: kind, tier and options (so the same target is held once)."""
        return json.dumps([self.kind, self.tier, dict(self.options)], sort_keys=True, default=str)

    @property
    def label(self) -> str:
        """How messages name this spec: ``http-gate of tier web``."""
        return f"{self.kind} of tier {self.tier}"


@dataclass(frozen=True, slots=True)
class HoldReport:
    """What a hold did, for the snapshot metadata (e.g. the queue length, an LSN)."""

    held_at: float  #: time.time() when the tier was held
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResumeReport:
    """What a resume did, for the snapshot metadata beside the hold's."""

    resumed_at: float
    details: dict[str, str] = field(default_factory=dict)


class Quiescer(Protocol):
    """The contract every quiescer meets (see the module docstring), built-in or plug-in."""

    @property
    def name(self) -> str: ...

    def applies_to(self, spec: QuiesceSpec) -> bool: ...

    def validate(self, spec: QuiesceSpec) -> None:
        """Raise QuiesceError (one line) when the options are wrong; no I/O."""
        ...

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        """Hold the tier still; raise QuiesceError when it cannot be held in time."""
        ...

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        """Let the tier go again; safe to call when ``hold`` failed or was never called."""
        ...


@runtime_checkable
class Renewable(Protocol):
    """A quiescer whose hold has a lease that can be extended while the cut is taken."""

    def renew(self, spec: QuiesceSpec) -> None:
        """Extend the tier's lease to ``spec.lease_seconds`` from now; raise if it cannot be."""
        ...
