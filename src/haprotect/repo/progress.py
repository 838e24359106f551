"""Throttled progress reporting, and the background count of a backup's input."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

from haprotect.model.progress import Phase, ProgressEvent

ProgressSink = Callable[[ProgressEvent], None]

INTERVAL_S = 0.1


class ProgressMeter:
    """Calls ``sink`` at most every ``INTERVAL_S`` seconds, and once at the end."""

    def __init__(self, phase: Phase, sink: ProgressSink | None) -> None:
        self._phase = phase
        self._sink = sink
        self._last = 0.0
        self.files_total: int | None = None
        self.bytes_total: int | None = None

    @property
    def active(self) -> bool:
        return self._sink is not None

    def update(self, files: int, nbytes: int, current: str | None, *, force: bool = False) -> None:
        if self._sink is None:
            return
        now = time.monotonic()
        if not force and now - self._last < INTERVAL_S:
            return
        self._last = now
        self._sink(
            ProgressEvent(self._phase, files, nbytes, self.files_total, self.bytes_total, current)
        )

    def finish(self, files: int, nbytes: int) -> None:
        if self._sink is not None:
            self._sink(
                ProgressEvent(
                    self._phase,
                    files,
                    nbytes,
                    self.files_total if self.files_total is not None else files,
                    self.bytes_total if self.bytes_total is not None else nbytes,
                    None,
                    finished=True,
                )
            )


class InputCounter(threading.Thread):
    """Counts the files and bytes under the backup roots, to give totals."""

    def __init__(self, roots: Sequence[bytes], meter: ProgressMeter) -> None:
        super().__init__(name="haprotect-count", daemon=True)
        self._roots = list(roots)
        self._meter = meter
        self._halt = threading.Event()  # not _stop: Thread._stop is a method fork calls

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        files = nbytes = 0
        stack = list(self._roots)
        while stack and not self._halt.is_set():
            path = stack.pop()
            try:
                with os.scandir(path) as it:
                    for entry in it:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            files += 1
                            nbytes += entry.stat(follow_symlinks=False).st_size
            except NotADirectoryError:
                try:
                    nbytes += os.lstat(path).st_size
                    files += 1
                except OSError:
                    continue
            except OSError:
                continue
        if not self._halt.is_set():
            self._meter.files_total = files
            self._meter.bytes_total = nbytes
