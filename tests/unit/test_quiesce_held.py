"""held(): top-down holds, bottom-up resumes in finally, on_error, timeouts, windows."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from haprotect.errors import QuiesceError
from haprotect.quiesce import (
    HoldAborted,
    HoldReport,
    OnError,
    QuiesceSpec,
    ResumeReport,
    builtin_quiescers,
    held,
)
from haprotect.quiesce.base import Quiescer


@dataclass
class Fake:
    """A quiescer that records what it is asked, and fails or stalls where told."""

    log: list[str]
    name: str = "fake"
    fail_hold: set[str] = field(default_factory=set)
    fail_resume: set[str] = field(default_factory=set)
    stall_hold: dict[str, float] = field(default_factory=dict)
    held_now: set[str] = field(default_factory=set)

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        if spec.options.get("bad"):
            raise QuiesceError(f"{spec.label}: option 'bad' is bad")

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        self.log.append(f"hold {spec.tier}")
        if spec.tier in self.stall_hold:
            time.sleep(self.stall_hold[spec.tier])
        if spec.tier in self.fail_hold:
            raise QuiesceError(f"{spec.label}: cannot hold\nsecond line never shown")
        self.held_now.add(spec.tier)
        return HoldReport(time.time(), {"tier": spec.tier})

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        self.log.append(f"resume {spec.tier}")
        self.held_now.discard(spec.tier)
        if spec.tier in self.fail_resume:
            raise RuntimeError(f"resume of {spec.tier} broke")
        return ResumeReport(time.time(), {"resumed": spec.tier})


def specs(*tiers: str, on_error: OnError = OnError.FAIL, timeout: float = 5.0) -> list[QuiesceSpec]:
    return [QuiesceSpec("fake", t, timeout_seconds=timeout, on_error=on_error) for t in tiers]


def registry(fake: Fake) -> dict[str, Quiescer]:
    return {"fake": fake}


def test_holds_top_down_and_resumes_bottom_up_with_windows() -> None:
    fake = Fake([])
    with held(specs("web", "app", "db"), registry(fake)) as holding:
        assert fake.held_now == {"web", "app", "db"}
        fake.log.append("cut")
    assert fake.log == [
        "hold web",
        "hold app",
        "hold db",
        "cut",
        "resume db",
        "resume app",
        "resume web",
    ]
    assert holding.ok and [w.tier for w in holding.windows] == ["web", "app", "db"]
    for window in holding.windows:
        assert window.held_at is not None and window.resumed_at is not None
        assert window.resumed_at >= window.held_at and window.seconds is not None
        assert window.hold_details == {"tier": window.tier}
        assert window.resume_details == {"resumed": window.tier}


def test_failing_hold_with_fail_resumes_every_tier_already_held_then_raises() -> None:
    fake = Fake([], fail_hold={"db"})
    body_ran = False
    with (
        pytest.raises(HoldAborted) as caught,
        held(specs("web", "app", "db", "disk"), registry(fake)),
    ):
        body_ran = True
    assert not body_ran
    # The failed tier is resumed too (resume is safe after a failed hold); "disk" never held.
    assert fake.log == ["hold web", "hold app", "hold db", "resume db", "resume app", "resume web"]
    assert fake.held_now == set()
    assert str(caught.value) == "fake of tier db: cannot hold"
    issues = caught.value.holding.issues
    assert [(i.tier, i.phase) for i in issues] == [("db", "hold")]


def test_failing_hold_with_continue_records_the_issue_and_goes_on() -> None:
    fake = Fake([], fail_hold={"app"})
    with held(specs("web", "app", "db", on_error=OnError.CONTINUE), registry(fake)) as holding:
        assert fake.held_now == {"web", "db"}
    assert fake.log[:3] == ["hold web", "hold app", "hold db"]
    assert fake.log[3:] == ["resume db", "resume app", "resume web"]
    assert [(i.tier, i.phase, i.message) for i in holding.issues] == [
        ("app", "hold", "fake of tier app: cannot hold")
    ]
    assert holding.window("app").held_at is None
    assert holding.window("db").held_at is not None


def test_exception_in_the_body_still_resumes_everything() -> None:
    fake = Fake([])
    with pytest.raises(ZeroDivisionError), held(specs("web", "db"), registry(fake)):
        _ = 1 / 0
    assert fake.log == ["hold web", "hold db", "resume db", "resume web"]


def test_keyboard_interrupt_in_the_body_resumes_everything() -> None:
    fake = Fake([])
    with pytest.raises(KeyboardInterrupt), held(specs("web", "db"), registry(fake)):
        raise KeyboardInterrupt
    assert fake.held_now == set()
    assert fake.log[-2:] == ["resume db", "resume web"]


def test_a_failing_resume_is_recorded_and_the_others_still_resume() -> None:
    fake = Fake([], fail_resume={"app"})
    with held(specs("web", "app", "db"), registry(fake)) as holding:
        pass
    assert fake.log[3:] == ["resume db", "resume app", "resume web"]
    assert [(i.tier, i.phase) for i in holding.issues] == [("app", "resume")]
    assert holding.issues[0].message == "RuntimeError: resume of app broke"
    assert holding.window("app").resumed_at is None
    assert holding.window("web").resumed_at is not None


def test_a_hold_that_overruns_its_timeout_is_abandoned_and_resumed() -> None:
    fake = Fake([], stall_hold={"app": 1.0})
    started = time.monotonic()
    with (
        pytest.raises(HoldAborted, match=r"fake of tier app: hold did not finish within 0\.3s"),
        held(specs("web", "app", timeout=0.1), registry(fake), grace=0.2),
    ):
        pass
    elapsed = time.monotonic() - started
    # Gave up after timeout + grace, then waited for the stalled hold before resuming it.
    assert fake.log == ["hold web", "hold app", "resume app", "resume web"]
    assert elapsed < 3.0


def test_timeout_with_continue_goes_on_to_the_next_tier() -> None:
    fake = Fake([], stall_hold={"app": 0.6})
    with held(
        specs("app", "db", on_error=OnError.CONTINUE, timeout=0.1), registry(fake), grace=0.1
    ) as holding:
        assert "db" in fake.held_now
    assert [(i.tier, i.phase) for i in holding.issues] == [("app", "hold")]
    assert "did not finish within" in holding.issues[0].message


def test_bad_options_fail_before_anything_is_held() -> None:
    fake = Fake([])
    bad = QuiesceSpec("fake", "db", options={"bad": True})
    with (
        pytest.raises(HoldAborted, match="option 'bad' is bad"),
        held([*specs("web"), bad], registry(fake)),
    ):
        pass
    assert fake.log == []


def test_unknown_kind_with_continue_is_skipped() -> None:
    fake = Fake([])
    unknown = QuiesceSpec("nope", "cache", on_error=OnError.CONTINUE)
    with held([unknown, *specs("db")], registry(fake)) as holding:
        pass
    assert fake.log == ["hold db", "resume db"]
    assert holding.issues[0].phase == "validate"
    assert "unknown quiescer 'nope'" in holding.issues[0].message


def test_an_interrupt_during_resumes_does_not_stop_the_other_resumes() -> None:
    log: list[str] = []

    class Interrupting(Fake):
        def resume(self, spec: QuiesceSpec) -> ResumeReport:
            if spec.tier == "db":
                log.append("resume db")
                raise KeyboardInterrupt
            return super().resume(spec)

    fake = Interrupting(log)
    with pytest.raises(KeyboardInterrupt), held(specs("web", "db"), registry(fake)):
        pass
    assert log == ["hold web", "hold db", "resume db", "resume web"]


def test_holds_run_in_worker_threads_so_the_caller_is_never_stuck() -> None:
    names: list[str] = []

    class Recording(Fake):
        def hold(self, spec: QuiesceSpec) -> HoldReport:
            names.append(threading.current_thread().name)
            return super().hold(spec)

    with held(specs("web"), registry(Recording([]))):
        pass
    assert names == ["quiesce fake of tier web: hold"]


def test_the_default_registry_holds_every_builtin() -> None:
    assert builtin_quiescers().names() == [
        "app-flush",
        "cluster",
        "command",
        "fsfreeze",
        "haproxy",
        "http-gate",
        "postgresql",
    ]


SIGTERMED = textwrap.dedent(
    """
    import sys, time
    from haprotect.quiesce import QuiesceSpec, held
    from haprotect.cli.signals import sigterm_raises
    post = ["/usr/bin/touch", sys.argv[1]]
    options = {"pre": ["/bin/true"], "post": post, "lease": False}
    spec = QuiesceSpec("command", "app", options=options)
    with sigterm_raises(), held([spec]):
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_sigterm_inside_sigterm_raises_still_resumes(tmp_path: Path) -> None:
    marker = tmp_path / "resumed"
    process = subprocess.Popen(
        [sys.executable, "-c", SIGTERMED, str(marker)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        assert not marker.exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.wait()
    assert marker.exists(), "SIGTERM ended the process without resuming"


@dataclass
class Leased(Fake):
    """A fake whose hold has a lease that can be renewed, or not."""

    name: str = "leased"
    renewed: list[str] = field(default_factory=list)
    fail_renew: set[str] = field(default_factory=set)

    def renew(self, spec: QuiesceSpec) -> None:
        if spec.tier in self.fail_renew:
            raise QuiesceError(f"{spec.label}: the lease is gone")
        self.renewed.append(spec.tier)


def leased_specs(*tiers: str, lease: float) -> list[QuiesceSpec]:
    return [QuiesceSpec("leased", t, lease_seconds=lease) for t in tiers]


def test_leases_are_renewed_while_the_cut_is_taken_and_not_after() -> None:
    fake = Leased([])
    with held(leased_specs("web", "db", lease=0.3), {"leased": fake}) as holding:
        time.sleep(0.55)  # about five renewal periods of 0.1 s
    renewed = list(fake.renewed)
    assert renewed.count("web") >= 3 and renewed.count("db") >= 3
    assert holding.issues == ()
    time.sleep(0.25)
    assert fake.renewed == renewed  # stopped before the resumes


def test_the_first_renewal_comes_at_once_and_a_quiescer_without_leases_is_left_alone() -> None:
    leased, plain = Leased([]), Fake([])
    both = [*leased_specs("web", lease=30.0), *specs("db")]
    with held(both, {"leased": leased, "fake": plain}):
        deadline = time.monotonic() + 2.0
        while not leased.renewed and time.monotonic() < deadline:
            time.sleep(0.01)
    assert leased.renewed == ["web"]  # at once, not after a third of 30 s
    assert plain.log == ["hold db", "resume db"]


def test_renewals_stop_after_the_limit_and_say_so() -> None:
    fake = Leased([])
    with held(leased_specs("web", lease=0.15), {"leased": fake}, renew_limit=0.2) as holding:
        time.sleep(0.5)
        count = len(fake.renewed)
        time.sleep(0.2)
        assert len(fake.renewed) == count  # no more renewals past the limit
    [issue] = holding.issues
    assert issue.phase == "renew" and "took over 0.2s" in issue.message
    assert fake.log[-1] == "resume web"


def test_a_failed_renewal_is_an_issue_said_once() -> None:
    fake = Leased([], fail_renew={"db"})
    with held(leased_specs("web", "db", lease=0.15), {"leased": fake}) as holding:
        time.sleep(0.4)
    renews = [i for i in holding.issues if i.phase == "renew"]
    assert [(i.tier, i.message) for i in renews] == [("db", "leased of tier db: the lease is gone")]
    assert fake.renewed.count("web") >= 2
    assert fake.log[-2:] == ["resume db", "resume web"]
