"""The dispatcher: every notification to every target that wants its kind, never in the way.

The scheduler calls :meth:`Dispatcher.notify`, which only puts the
notification on a bounded queue and returns: one background thread sends it
to each target in turn, each with its own timeout and retries. So a slow or
dead receiver delays other notifications, never a backup; when the queue is
full (a dead target and a storm of alerts) the new notification is dropped
and the drop recorded. Nothing raises into the caller: every failure is
logged (redacted: no secret of a target appears) and kept in
:attr:`Dispatcher.failures` (the newest :data:`KEPT_FAILURES`) for the
status API.

:meth:`Dispatcher.deliver` sends at once in the caller's thread (the
``notify test`` of a command line, or a last notification at shutdown) and
returns the failures. The thread is a daemon: a service that exits without
:meth:`Dispatcher.close` loses what was queued rather than hanging.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from haprotect.redact import redact_text
from haprotect.service.notify.config import NotificationsConfig
from haprotect.service.notify.notification import Kind, Notification
from haprotect.service.notify.target import DeliveryError, Target

#: How many failed deliveries :attr:`Dispatcher.failures` keeps.
KEPT_FAILURES = 100

_LOG = logging.getLogger("haprotect.service.notify")
_STOP = object()


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """A notification a target did not take (``target`` "queue" when it was dropped)."""

    target: str
    kind: Kind
    subject: str
    error: str
    at: datetime


class Dispatcher:
    """Sends notifications to ``targets`` from a background thread (see the module docstring)."""

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        queue_size: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: logging.Logger = _LOG,
    ) -> None:
        self._targets = tuple(targets)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._clock = clock
        self._log = log
        self._failures: deque[DeliveryFailure] = deque(maxlen=KEPT_FAILURES)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t.name for t in self._targets)

    @property
    def failures(self) -> tuple[DeliveryFailure, ...]:
        """The newest failed deliveries, oldest first."""
        with self._lock:
            return tuple(self._failures)

    @property
    def waiting(self) -> int:
        """How many notifications wait in the queue (not the one being sent)."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the sending thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="haprotect-notify", daemon=True)
            self._thread.start()

    def notify(self, notification: Notification) -> bool:
        """Queue ``notification``; False (recorded as a failure) when the queue is full."""
        if not self._targets:
            return True
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            self._record("queue", notification, "dropped: too many notifications waiting")
            return False
        return True

    def deliver(self, notification: Notification) -> tuple[DeliveryFailure, ...]:
        """Send ``notification`` now, in this thread, to each target; the failures."""
        failed: list[DeliveryFailure] = []
        for target in self._targets:
            if notification.kind not in target.kinds:
                continue
            try:
                target.send(notification)
            except DeliveryError as exc:
                failed.append(self._record(target.name, notification, exc.message))
            except Exception as exc:  # a target's bug must not stop the others
                why = f"{type(exc).__name__}: {redact_text(str(exc))}"
                failed.append(self._record(target.name, notification, why))
            else:
                self._log.info("notified %s: %s", target.name, notification.subject)
        return tuple(failed)

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued (for at most ``timeout`` seconds), stop, close the targets."""
        if self._thread is not None:
            with contextlib.suppress(queue.Full):  # a full queue: the join below times out
                self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._log.warning("notifications still being sent after %.0f s: left", timeout)
            self._thread = None
        for target in self._targets:
            target.close()

    def __enter__(self) -> Dispatcher:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, Notification):
                self.deliver(item)

    def _record(self, target: str, notification: Notification, error: str) -> DeliveryFailure:
        failure = DeliveryFailure(
            target, notification.kind, notification.subject, error, self._clock()
        )
        with self._lock:
            self._failures.append(failure)
        self._log.warning("notification %r not sent to %s: %s", notification.subject, target, error)
        return failure


def build_targets(
    config: NotificationsConfig, *, sleep: Callable[[float], None] = time.sleep
) -> list[Target]:
    """The targets of ``config``, their secret files read (:class:`InputError` if one cannot be)."""
    from haprotect.service.notify.email import EmailTarget
    from haprotect.service.notify.webhook import WebhookTarget

    return [
        WebhookTarget(t, sleep=sleep) if t.type == "webhook" else EmailTarget(t, sleep=sleep)
        for t in config.targets
    ]


def start_dispatcher(config: NotificationsConfig) -> Dispatcher:
    """A started dispatcher sending to ``config``'s targets."""
    made = Dispatcher(build_targets(config), queue_size=config.queue_size)
    made.start()
    return made
