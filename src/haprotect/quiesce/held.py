"""Hold tiers top-down, let the caller take its cut, resume them bottom-up, always.

:func:`held` is the whole safety protocol of a consistent multi-tier cut::

    with held(specs) as holding:          # specs in plan order, top tier first
        cut = take_the_cut()              # snapshot, pg_backup_start, LVM, ...
    windows = holding.windows             # per tier: held_at, resumed_at, details
    issues = holding.issues               # what went wrong with on_error=continue

- Every spec is validated before anything is held; an unknown kind or bad
  options fail the run (``on_error=fail``) or skip the tier (``continue``).
- Tiers are held in the given order. Each hold and each resume runs with
  the spec's timeout (plus a short grace) in a worker thread, so a stuck
  quiescer cannot stall the run: it is reported as timed out and resumed.
- A failed hold with ``on_error=fail`` raises :class:`HoldAborted` after
  every tier attempted so far has been resumed; with ``continue`` the issue is
  recorded and the next tier is held.
- Every tier whose hold was attempted (even a failed one) is resumed in
  reverse order in ``finally``: after the block, after an exception, after
  KeyboardInterrupt or SystemExit. A failing resume is recorded and the
  others are still resumed; a second interrupt during resumes is held back
  until every resume was tried. Resume failures never raise: the cut is
  taken, and the issue says which tier may still be held (its lease
  releases it).
- While the caller takes its cut, the lease of every held tier whose
  quiescer can renew it (:class:`~haprotect.quiesce.base.Renewable`: the
  gate, fsfreeze, the cluster) is renewed at once and then every third of
  its length, so a cut longer than a lease does not let a tier go early
  (the first renewal also covers the time the later tiers took to hold). A
  renewal that fails is an issue (phase ``renew``): the tier may be
  released before the cut ends. Renewals stop after ``renew_limit``
  seconds (an issue says so): a cut stuck that long must not hold the
  tiers for ever, and their leases then release them.

SIGTERM ends a Python process without running ``finally`` unless a handler
turns it into an exception: the CLI wraps a run in
:func:`haprotect.cli.signals.sigterm_raises`. Library code never installs
signal handlers. kill -9 runs nothing at all: that is what leases are for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from haprotect.errors import HaprotectError, QuiesceError
from haprotect.quiesce.base import (
    HoldReport,
    OnError,
    Quiescer,
    QuiesceSpec,
    Renewable,
    ResumeReport,
)
from haprotect.redact import redact_text
from haprotect.registry import Registry

log = logging.getLogger(__name__)

R = TypeVar("R")

#: How long past its own timeout a hold or resume may run before it is abandoned.
GRACE_SECONDS = 2.0
#: How long leases are renewed while a cut is taken; after that they run out.
RENEW_LIMIT_SECONDS = 1800.0

Quiescers = Registry[Quiescer, QuiesceSpec] | Mapping[str, Quiescer]


@dataclass(frozen=True, slots=True)
class HoldWindow:
    """One tier's hold, for the snapshot metadata."""

    tier: str
    kind: str
    held_at: float | None  #: time.time() when held; None when the hold failed
    resumed_at: float | None = None  #: None until resumed, or when the resume failed
    hold_details: Mapping[str, str] = field(default_factory=dict)
    resume_details: Mapping[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """How long the tier was held, when both ends are known."""
        if self.held_at is None or self.resumed_at is None:
            return None
        return self.resumed_at - self.held_at


@dataclass(frozen=True, slots=True)
class QuiesceIssue:
    """What went wrong with one tier's quiescer, and in which phase (its message redacted)."""

    tier: str
    kind: str
    phase: str  #: "validate", "hold", "renew" or "resume"
    message: str


class HeldTiers:
    """What :func:`held` yields; complete (resume times filled in) after the block."""

    def __init__(self) -> None:
        self._windows: dict[int, HoldWindow] = {}
        self._issues: list[QuiesceIssue] = []

    @property
    def windows(self) -> tuple[HoldWindow, ...]:
        """One window per tier whose hold was attempted, in hold order."""
        return tuple(self._windows[i] for i in sorted(self._windows))

    @property
    def issues(self) -> tuple[QuiesceIssue, ...]:
        return tuple(self._issues)

    @property
    def ok(self) -> bool:
        return not self._issues

    def window(self, tier: str, kind: str | None = None) -> HoldWindow:
        for window in self.windows:
            if window.tier == tier and (kind is None or window.kind == kind):
                return window
        raise KeyError(tier)

    def _record(self, spec: QuiesceSpec, phase: str, message: str) -> QuiesceIssue:
        # A quiescer's message may quote its options (a URL with its password).
        issue = QuiesceIssue(spec.tier, spec.kind, phase, redact_text(message))
        self._issues.append(issue)
        log.warning("%s: %s", phase, issue.message)
        return issue


class HoldAborted(QuiesceError):
    """A hold failed with ``on_error=fail``; every tier attempted was resumed first."""

    def __init__(self, message: str, holding: HeldTiers) -> None:
        super().__init__(message, hint="every tier held so far was resumed; see each tier's issues")
        self.holding = holding


@dataclass(slots=True)
class _Attempt:
    index: int
    spec: QuiesceSpec
    quiescer: Quiescer
    call: _Call[object] | None = None


class _Call(Generic[R]):
    """``fn`` in a daemon thread, waited for up to a deadline."""

    def __init__(self, fn: Callable[[], R], seconds: float, what: str) -> None:
        self.what = what
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self._fn = fn
        self._result: R | None = None
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"quiesce {what}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._result = self._fn()
        except BaseException as exc:
            self._error = exc

    def wait(self) -> None:
        """Wait until the deadline at most (interruptible)."""
        self.thread.join(max(0.0, self.deadline - time.monotonic()))

    def result(self) -> R:
        self.wait()
        if self.thread.is_alive():
            raise QuiesceError(f"{self.what} did not finish within {self.seconds:g}s")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


def one_line(exc: BaseException) -> str:
    """An exception as one line: a HaprotectError's message, else type and text."""
    text = exc.message if isinstance(exc, HaprotectError) else f"{type(exc).__name__}: {exc}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _find(quiescers: Quiescers, spec: QuiesceSpec) -> Quiescer:
    if isinstance(quiescers, Registry):
        quiescer = quiescers.get(spec.kind)
    else:
        try:
            quiescer = quiescers[spec.kind]
        except KeyError:
            known = ", ".join(sorted(quiescers)) or "none"
            raise QuiesceError(f"unknown quiescer {spec.kind!r} (known: {known})") from None
    if not quiescer.applies_to(spec):
        raise QuiesceError(f"{spec.label}: the {quiescer.name} quiescer does not apply")
    quiescer.validate(spec)
    return quiescer


@contextmanager
def held(
    specs: Sequence[QuiesceSpec],
    quiescers: Quiescers | None = None,
    *,
    grace: float = GRACE_SECONDS,
    clock: Callable[[], float] = time.time,
    renew_limit: float = RENEW_LIMIT_SECONDS,
) -> Iterator[HeldTiers]:
    """Hold ``specs`` in order (top tier first); resume them in reverse, always.

    ``quiescers`` defaults to the registry of built-in and plug-in quiescers
    (:data:`haprotect.quiesce.quiescers`). Raises :class:`HoldAborted` when
    a spec with ``on_error=fail`` cannot be validated or held.
    """
    if quiescers is None:
        from haprotect.quiesce.registry import builtin_quiescers

        quiescers = builtin_quiescers()
    holding = HeldTiers()
    chosen: list[tuple[QuiesceSpec, Quiescer]] = []
    for spec in specs:
        try:
            chosen.append((spec, _find(quiescers, spec)))
        except HaprotectError as exc:
            issue = holding._record(spec, "validate", one_line(exc))
            if spec.on_error is OnError.FAIL:
                raise HoldAborted(issue.message, holding) from None
    attempts: list[_Attempt] = []
    try:
        for index, (spec, quiescer) in enumerate(chosen):
            attempt = _Attempt(index, spec, quiescer)
            attempts.append(attempt)
            holding._windows[index] = HoldWindow(spec.tier, spec.kind, None)
            _hold(attempt, holding, grace, clock)
        renewer = _Renewer(attempts, holding, renew_limit)
        try:
            yield holding
        finally:
            renewer.stop()
    finally:
        _resume_all(attempts, holding, grace, clock)


class _Renewer:
    """Renews the leases of the held tiers: at once, then every third of each, until stopped."""

    def __init__(self, attempts: Sequence[_Attempt], holding: HeldTiers, limit: float) -> None:
        self._holding = holding
        self._limit = limit
        self._due = {
            a.index: (a, max(a.spec.lease_seconds / 3, 0.05))
            for a in attempts
            if isinstance(a.quiescer, Renewable) and holding._windows[a.index].held_at is not None
        }
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        if self._due:
            self._thread = threading.Thread(target=self._run, name="quiesce renew", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        next_at = dict.fromkeys(self._due, started)
        while next_at:
            wait = max(0.0, min(next_at.values()) - time.monotonic())
            if self._stopped.wait(wait):
                return
            if time.monotonic() - started > self._limit:
                for index in next_at:
                    attempt = self._due[index][0]
                    self._holding._record(
                        attempt.spec,
                        "renew",
                        f"{attempt.spec.label}: the cut took over {self._limit:g}s; "
                        "the lease is no longer renewed and will release the tier",
                    )
                return
            for index in [i for i, at in next_at.items() if at <= time.monotonic()]:
                attempt, every = self._due[index]
                quiescer = attempt.quiescer
                assert isinstance(quiescer, Renewable)
                try:
                    quiescer.renew(attempt.spec)
                except Exception as exc:
                    self._holding._record(attempt.spec, "renew", one_line(exc))
                    del next_at[index]  # said once; its resume will say what became of it
                    continue
                next_at[index] = time.monotonic() + every

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()


def _hold(attempt: _Attempt, holding: HeldTiers, grace: float, clock: Callable[[], float]) -> None:
    spec, quiescer = attempt.spec, attempt.quiescer
    started = time.monotonic()
    call: _Call[object] = _Call(
        lambda: quiescer.hold(spec), spec.timeout_seconds + grace, f"{spec.label}: hold"
    )
    attempt.call = call
    try:
        report = _hold_report(call.result())
    except Exception as exc:
        issue = holding._record(spec, "hold", one_line(exc))
        log.debug("hold of %s failed", spec.label, exc_info=exc)
        if spec.on_error is OnError.FAIL:
            raise HoldAborted(issue.message, holding) from None
        return
    held_at = report.held_at if report.held_at else clock()
    holding._windows[attempt.index] = HoldWindow(
        spec.tier, spec.kind, held_at, hold_details=dict(report.details)
    )
    log.info("held %s in %.3fs", spec.label, time.monotonic() - started)


def _hold_report(result: object) -> HoldReport:
    if not isinstance(result, HoldReport):
        raise QuiesceError(f"a quiescer returned {type(result).__name__}, not a report")
    return result


def _resume_all(
    attempts: list[_Attempt], holding: HeldTiers, grace: float, clock: Callable[[], float]
) -> None:
    interrupted: BaseException | None = None
    for attempt in reversed(attempts):
        try:
            _resume(attempt, holding, grace, clock)
        except (KeyboardInterrupt, SystemExit) as exc:
            # Keep resuming the others; the interrupt is raised once all were tried.
            holding._record(attempt.spec, "resume", f"{attempt.spec.label}: interrupted")
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


def _resume(
    attempt: _Attempt, holding: HeldTiers, grace: float, clock: Callable[[], float]
) -> None:
    spec, quiescer = attempt.spec, attempt.quiescer
    if attempt.call is not None and attempt.call.thread.is_alive():
        # A hold still running (timed out or interrupted): let it end before undoing it.
        attempt.call.wait()
    call: _Call[object] = _Call(
        lambda: quiescer.resume(spec), spec.timeout_seconds + grace, f"{spec.label}: resume"
    )
    window = holding._windows[attempt.index]
    try:
        report = call.result()
    except Exception as exc:
        holding._record(spec, "resume", one_line(exc))
        log.debug("resume of %s failed", spec.label, exc_info=exc)
        return
    if not isinstance(report, ResumeReport):
        holding._record(spec, "resume", f"{spec.label}: the quiescer returned no report")
        return
    holding._windows[attempt.index] = HoldWindow(
        window.tier,
        window.kind,
        window.held_at,
        report.resumed_at or clock(),
        window.hold_details,
        dict(report.details),
    )
    log.info("resumed %s", spec.label)
