"""The dispatcher: every notification to every target, in the background, never raising."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from tests.receivers import SmtpReceiver, WebhookReceiver

from haprotect.ports import free_ports
from haprotect.service.notify.config import NotificationsConfig
from haprotect.service.notify.dispatch import Dispatcher, build_targets
from haprotect.service.notify.notification import Kind, Notification
from haprotect.service.notify.target import DeliveryError

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DRIFT = Notification(Kind.DRIFT, "drift in lab: 1 finding", "fs_new is not covered.", {}, AT)
FAILED = Notification(Kind.FAILURE, "backup of item:lab/db failed", "It failed.", {}, AT)
TOKEN = "tok-0c41d7-not-for-logs"


@dataclass
class Recording:
    """A target that keeps what it is sent, or fails as told (logic only)."""

    name: str
    kinds: frozenset[Kind] = frozenset(Kind)
    fail: Exception | None = None
    gate: threading.Event | None = None
    sent: list[Notification] = field(default_factory=list)
    closed: bool = False

    def send(self, notification: Notification) -> None:
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail is not None:
            raise self.fail
        self.sent.append(notification)

    def close(self) -> None:
        self.closed = True


def test_each_target_gets_the_kinds_it_wants() -> None:
    everything = Recording("all")
    failures_only = Recording("failures", kinds=frozenset({Kind.FAILURE}))
    with Dispatcher([everything, failures_only]) as dispatcher:
        assert dispatcher.notify(DRIFT)
        assert dispatcher.notify(FAILED)
    assert everything.sent == [DRIFT, FAILED]
    assert failures_only.sent == [FAILED]
    assert everything.closed and failures_only.closed


def test_a_failing_target_is_recorded_and_the_others_still_get_it() -> None:
    broken = Recording("broken", fail=DeliveryError("broken: refused with HTTP 400"))
    buggy = Recording("buggy", fail=RuntimeError("boom at https://u:hunter2@example.com"))
    fine = Recording("fine")
    dispatcher = Dispatcher([broken, buggy, fine], clock=lambda: AT)
    failed = dispatcher.deliver(FAILED)
    assert [f.target for f in failed] == ["broken", "buggy"]
    assert failed[0].error == "broken: refused with HTTP 400"
    assert failed[1].error == "RuntimeError: boom at https://u:<redacted>@example.com"
    assert failed[0].kind is Kind.FAILURE and failed[0].at == AT
    assert dispatcher.failures == failed
    assert fine.sent == [FAILED]


def test_notify_does_not_wait_for_a_slow_target() -> None:
    gate = threading.Event()
    slow = Recording("slow", gate=gate)
    with Dispatcher([slow]) as dispatcher:
        began = time.monotonic()
        for _ in range(3):
            dispatcher.notify(FAILED)
        assert time.monotonic() - began < 0.5
        assert slow.sent == []
        gate.set()
    assert slow.sent == [FAILED] * 3


def test_a_full_queue_drops_and_records() -> None:
    gate = threading.Event()
    stuck = Recording("stuck", gate=gate)
    with Dispatcher([stuck], queue_size=1) as dispatcher:
        dispatcher.notify(FAILED)  # taken by the thread, which waits at the gate
        deadline = time.monotonic() + 5
        while dispatcher.waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dispatcher.notify(FAILED)  # waits in the queue
        assert not dispatcher.notify(DRIFT)  # no room
        gate.set()
    assert [(f.target, f.subject) for f in dispatcher.failures] == [("queue", DRIFT.subject)]
    assert len(stuck.sent) == 2


def test_real_targets_from_the_config_and_no_secret_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (dead,) = free_ports(1)
    waits: list[float] = []
    with WebhookReceiver(statuses=[503, 503]).running() as hook, SmtpReceiver().running() as smtp:
        config = NotificationsConfig.model_validate(
            {
                "targets": [
                    {"type": "webhook", "url": hook.url, "bearer_token": TOKEN},
                    {
                        "type": "webhook",
                        "name": "dead",
                        "url": f"http://127.0.0.1:{dead}/x",
                        "bearer_token": TOKEN,
                        "attempts": 2,
                    },
                    {
                        "type": "email",
                        "host": "127.0.0.1",
                        "port": smtp.port,
                        "security": "none",
                        "sender": "haprotect@example.com",
                        "to": ["ops@example.com"],
                    },
                ]
            }
        )
        with (
            caplog.at_level(logging.DEBUG, logger="haprotect.service.notify"),
            Dispatcher(build_targets(config, sleep=waits.append)) as dispatcher,
        ):
            dispatcher.notify(FAILED)
    assert len(hook.requests) == 3
    assert hook.requests[-1].json()["subject"] == FAILED.subject
    assert [m["Subject"] for m in smtp.messages] == [f"[haprotect] {FAILED.subject}"]
    (failure,) = dispatcher.failures
    assert failure.target == "dead"
    assert "not delivered after 2 attempts" in failure.error
    assert "not sent to dead" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(config)


def test_without_targets_nothing_is_queued() -> None:
    dispatcher = Dispatcher([])
    assert dispatcher.notify(FAILED)
    assert dispatcher.deliver(FAILED) == ()


def test_close_does_not_hang_on_a_stuck_target_and_a_full_queue() -> None:
    gate = threading.Event()
    stuck = Recording("stuck", gate=gate)
    dispatcher = Dispatcher([stuck], queue_size=1)
    dispatcher.start()
    dispatcher.notify(FAILED)
    deadline = time.monotonic() + 5
    while dispatcher.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    dispatcher.notify(FAILED)
    began = time.monotonic()
    dispatcher.close(timeout=0.2)
    assert time.monotonic() - began < 2
    assert stuck.closed
    gate.set()
