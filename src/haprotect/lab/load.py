"""A steady stream of orders and uploads through the web tier, journaled when acknowledged.

:class:`LabLoad` runs in a background thread: ``rate`` requests a second,
every ``upload_every``-th of them an upload of random bytes, the others
orders. A request the lab acknowledges (a 2xx answer) is appended to the
lab's journal; one that fails is counted and not journaled, since nothing
was promised for it.

::

    with LabLoad(lab.web_url, lab.journal_path, rate=20) as load:
        lab.failover()
    print(load.report())
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from haprotect.lab.client import HttpFailure, request
from haprotect.lab.journal import ORDER, UPLOAD, Journal, JournalEntry
from haprotect.lab.shop import canonical, sha256_text

ITEMS = ("espresso", "croissant", "baguette", "tea", "muffin", "bagel", "juice", "scone")
_MAX_ERRORS = 5


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load run sent and what the lab acknowledged."""

    seconds: float
    orders: int  #: orders acknowledged (and journaled)
    uploads: int  #: uploads acknowledged (and journaled)
    failures: int  #: requests that got no success answer
    errors: tuple[str, ...]  #: the first few distinct failure messages

    @property
    def acknowledged(self) -> int:
        return self.orders + self.uploads


class LabLoad:
    """The load generator (see the module docstring); a context manager that stops it."""

    def __init__(
        self,
        web_url: str,
        journal_path: Path,
        *,
        rate: float = 10.0,
        upload_every: int = 5,
        upload_max_bytes: int = 64 * 1024,
        seed: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.web_url = web_url
        self.journal = Journal(journal_path)
        self.rate = rate
        self.upload_every = max(0, upload_every)
        self.upload_max_bytes = max(1, upload_max_bytes)
        self.timeout = timeout
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._orders = self._uploads = self._failures = 0
        self._errors: list[str] = []
        self._started = self._stopped = 0.0

    def start(self) -> LabLoad:
        if self._thread is None:
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="lab-load", daemon=True)
            self._thread.start()
        return self

    def wait(self, seconds: float) -> None:
        """Let the load run for ``seconds`` (or until stopped)."""
        self._stop.wait(seconds)

    def stop(self) -> LoadReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self._stopped:
            self._stopped = time.monotonic()
        self.journal.close()
        return self.report()

    def report(self) -> LoadReport:
        end = self._stopped or time.monotonic()
        with self._lock:
            return LoadReport(
                seconds=round(end - self._started, 3) if self._started else 0.0,
                orders=self._orders,
                uploads=self._uploads,
                failures=self._failures,
                errors=tuple(self._errors),
            )

    def __enter__(self) -> LabLoad:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        started = time.monotonic()
        sent = 0
        while not self._stop.is_set():
            delay = started + sent / self.rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            sent += 1
            if self.upload_every and sent % self.upload_every == 0:
                self._send_upload()
            else:
                self._send_order(sent)

    def _send_order(self, seq: int) -> None:
        order_id = uuid.uuid4().hex
        order: dict[str, object] = {
            "id": order_id,
            "item": self._rng.choice(ITEMS),
            "quantity": self._rng.randint(1, 5),
            "seq": seq,
        }
        payload = canonical(order)
        sent_at = time.time()
        try:
            _, body = request(
                f"{self.web_url}/api/orders",
                method="POST",
                data=json.dumps(order).encode(),
                timeout=self.timeout,
            )
        except HttpFailure as exc:
            self._failed(str(exc))
            return
        digest = sha256_text(payload)
        answer = json.loads(body)
        if answer.get("sha256") != digest:
            self._failed(f"order {order_id}: the application stored other bytes")
        self.journal.append(
            JournalEntry(ORDER, order_id, digest, len(payload), time.time(), sent_at)
        )
        with self._lock:
            self._orders += 1

    def _send_upload(self) -> None:
        name = f"load-{uuid.uuid4().hex}.bin"
        data = self._rng.randbytes(self._rng.randint(1, self.upload_max_bytes))
        sent_at = time.time()
        try:
            request(
                f"{self.web_url}/uploads?name={name}",
                method="POST",
                data=data,
                content_type="application/octet-stream",
                timeout=self.timeout,
            )
        except HttpFailure as exc:
            self._failed(str(exc))
            return
        digest = hashlib.sha256(data).hexdigest()
        self.journal.append(JournalEntry(UPLOAD, name, digest, len(data), time.time(), sent_at))
        with self._lock:
            self._uploads += 1

    def _failed(self, message: str) -> None:
        with self._lock:
            self._failures += 1
            if len(self._errors) < _MAX_ERRORS and message not in self._errors:
                self._errors.append(message)
