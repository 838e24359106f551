"""Quiescers: hold each tier of an application still while a backup takes its cut.

Terms:

- **quiescer**: a plug-in that holds one tier still and resumes it
  (:class:`~haprotect.quiesce.base.Quiescer`): ``http-gate`` (queue a web
  tier's requests at a gate), ``app-flush`` (have an application write its
  memory to the tier below), ``postgresql`` (checkpoint; backup start and
  stop), ``command`` (a tier's own pre and post hooks), ``fsfreeze``
  (freeze a filesystem), ``cluster`` (keep Pacemaker's hands off a tier),
  ``haproxy`` (hold a web tier's new connections at its HAProxy).
- **spec**: one quiescer of one tier as the policy configures it
  (:class:`~haprotect.quiesce.base.QuiesceSpec`): timeout, lease,
  ``on_error``, options.
- **hold window**: when a tier was held and resumed, with what each step
  reported (an LSN, a queue length), for the snapshot metadata.
- **lease**: how long a hold lasts if its holder disappears; the gate, a
  keeper process or the database session releases the tier by itself.

:func:`held` holds specs top-down and always resumes them bottom-up; the
engine takes its cut inside it. See docs/quiesce.md.
"""

from __future__ import annotations

from haprotect.quiesce.base import HoldReport, OnError, Quiescer, QuiesceSpec, ResumeReport
from haprotect.quiesce.held import HeldTiers, HoldAborted, HoldWindow, QuiesceIssue, held
from haprotect.quiesce.registry import builtin_quiescers, quiescer_for, quiescers

__all__ = [
    "HeldTiers",
    "HoldAborted",
    "HoldReport",
    "HoldWindow",
    "OnError",
    "QuiesceIssue",
    "QuiesceSpec",
    "Quiescer",
    "ResumeReport",
    "builtin_quiescers",
    "held",
    "quiescer_for",
    "quiescers",
]
