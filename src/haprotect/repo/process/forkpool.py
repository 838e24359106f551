"""A pool of forked processes that answer requests, each with a buffer it shares.

A backup's threads hold Python's global lock for the steps between system
calls and primitives; with many small files those steps alone keep a
process to about one core. A :class:`ForkPool` gives a thread a process of
its own to send work to: the thread :meth:`~ForkPool.take`-s a free process,
:meth:`~PooledProcess.call`-s it with a request (pickled through a pipe),
reads what the process left in their shared buffer, and
:meth:`~ForkPool.give`-s it back; a process answers one request at a time,
so nothing overwrites the buffer before it is given back. The processes are
forked (:mod:`haprotect.repo.process.forking`) and inherit what the parent holds;
each makes its own state once, with the ``make_handler`` the pool was given.

A process that dies or fails is lost: :meth:`~PooledProcess.call` raises
:class:`ProcessLost`, and the caller does the work itself. A process ends
when its requests pipe closes (:meth:`ForkPool.close`), or with its parent.
It keeps no descriptor of its parent's but its own two pipe ends, so no pipe
or socket of anyone else's stays open because it lives.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import mmap
import os
import pickle
import signal
import struct
import threading
from collections.abc import Callable
from typing import Any

from haprotect.repo.process.forking import Forker, end_helper, fork_helper

Handler = Callable[[Any, memoryview], Any]
"""What a pooled process does with a request: it may fill the shared buffer."""

_LENGTH = struct.Struct("<Q")
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031


class ProcessLost(Exception):
    """A pooled process died or failed; the message says how."""


class PooledProcess:
    """The parent's end of one pooled process."""

    def __init__(
        self,
        pid: int,
        requests: int,
        replies: int,
        buffer: mmap.mmap,
        kill: Callable[[int, int], None] = os.kill,
    ) -> None:
        self.pid = pid
        self._kill = kill
        self._requests = requests
        self._replies = replies
        self._map = buffer
        self.buffer = memoryview(buffer)
        """What the process leaves for the parent; valid until it is given back."""
        self.served = 0
        self._ended: str | None = None

    def call(self, request: object) -> Any:
        """Send ``request``, wait for the reply; :class:`ProcessLost` if none comes."""
        try:
            _send(self._requests, request)
            reply = _receive(self._replies)
        except BrokenPipeError:  # only the process reads its requests: it has ended
            raise ProcessLost(f"process {self.pid} ended: {self._end()}") from None
        except OSError as exc:
            raise ProcessLost(f"process {self.pid}: {exc.strerror or exc}") from None
        if reply is None:
            raise ProcessLost(f"process {self.pid} ended: {self._end()}")
        done, value = reply
        if not done:
            raise ProcessLost(f"process {self.pid} failed: {value}")
        self.served += 1
        return value

    def fds(self) -> tuple[int, int]:
        return self._requests, self._replies

    def close(self, *, kill: bool = False) -> None:
        """End the process (it leaves when its requests end) and reap it."""
        if kill and self._ended is None:
            with contextlib.suppress(ProcessLookupError):
                self._kill(self.pid, signal.SIGKILL)
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._requests = self._replies = -1
        self._end()
        self.buffer.release()
        # views of the buffer may outlive the process (in a traceback being
        # raised): the map is then unmapped when the last of them goes
        with contextlib.suppress(BufferError):
            self._map.close()

    def _end(self) -> str:
        """Reap the process (once: its pid may be reused after); how it ended."""
        if self._ended is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:  # SIGCHLD ignored: the system reaped it
                self._ended = "ended (how is unknown: SIGCHLD is ignored)"
            else:
                if os.WIFSIGNALED(status):
                    self._ended = f"killed by signal {os.WTERMSIG(status)}"
                else:
                    self._ended = f"exit status {os.waitstatus_to_exitcode(status)}"
        return self._ended


class ForkPool:
    """Up to ``size`` forked processes, each with a shared buffer of ``buffer_size`` bytes."""

    def __init__(
        self,
        make_handler: Callable[[], Handler],
        buffer_size: int,
        size: int,
        *,
        fork: Forker = fork_helper,
        kill: Callable[[int, int], None] = os.kill,
    ) -> None:
        """``make_handler`` runs in each process once, to make its handler.

        ``fork`` forks a process, ``kill`` signals one: the system's, unless a
        test gives its own.
        """
        self._make_handler = make_handler
        self._fork_helper = fork
        self._kill = kill
        self._buffer_size = buffer_size
        self.size = size
        self._lock = threading.Lock()
        self._free: list[PooledProcess] = []
        self._all: list[PooledProcess] = []
        self.lost: list[str] = []
        """How each lost process was lost."""

    @property
    def started(self) -> bool:
        return bool(self._all) or bool(self.lost)

    def start(self) -> None:
        """Fork the processes (from the thread that will not be their caller, ideally)."""
        while len(self._all) + len(self.lost) < self.size:
            try:
                self._fork()
            except OSError as exc:  # no room for a process: the callers do the work
                self.lost.append(f"not forked: {exc.strerror or exc}")
                return

    def take(self) -> PooledProcess | None:
        """A free process, or None when every one is busy or lost."""
        with self._lock:
            return self._free.pop() if self._free else None

    def give(self, process: PooledProcess) -> None:
        with self._lock:
            self._free.append(process)

    def lose(self, process: PooledProcess, why: str) -> None:
        """Stop using a process that failed (see :class:`ProcessLost`)."""
        with self._lock:
            self._all.remove(process)
            self.lost.append(why)
        process.close(kill=True)

    def served(self) -> int:
        """Requests answered by the processes still in the pool."""
        return sum(p.served for p in self._all)

    def close(self, *, kill: bool = False) -> None:
        """End every process and reap it; ``kill`` when they may be busy."""
        with self._lock:
            processes, self._all, self._free = self._all, [], []
        for process in processes:
            try:
                process.close(kill=kill)
            except Exception:
                end_helper(process.pid)

    def _fork(self) -> None:
        """Fork one more process; it is in the pool as soon as it exists.

        Whatever interrupts this (a KeyboardInterrupt between two steps) ends
        the process and closes what was opened for it.
        """
        buffer = mmap.mmap(-1, max(self._buffer_size, mmap.PAGESIZE))
        opened: list[int] = []
        pid = 0
        process: PooledProcess | None = None
        try:
            request_read, request_write = os.pipe()
            opened += (request_read, request_write)
            reply_read, reply_write = os.pipe()
            opened += (reply_read, reply_write)
            for fd in (request_write, reply_write):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
            make_handler = self._make_handler

            def body() -> int:
                return _serve(make_handler, request_read, reply_write, memoryview(buffer))

            pid = self._fork_helper(body, keep_in_child=(request_read, reply_write))
            for fd in (request_read, reply_write):  # the child's ends
                opened.remove(fd)
                os.close(fd)
            process = PooledProcess(pid, request_write, reply_read, buffer, self._kill)
            with self._lock:
                self._all.append(process)
                self._free.append(process)
        except BaseException:
            with self._lock:
                for members in (self._all, self._free):
                    if process in members:
                        members.remove(process)
            if pid:
                end_helper(pid)
            for fd in opened:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if process is not None:
                process.buffer.release()
            buffer.close()
            raise


def _serve(
    make_handler: Callable[[], Handler], requests: int, replies: int, buffer: memoryview
) -> int:
    """A pooled process: answer requests until they end."""
    # the parent handles an interrupt, and ends its processes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # what the parent made is never collected here: leave its pages shared
    gc.freeze()
    handler = make_handler()
    while True:
        request = _receive(requests)
        if request is None:
            return 0
        try:
            reply = (True, handler(request, buffer))
        except Exception as exc:
            _send(replies, (False, f"{type(exc).__name__}: {exc}"))
            return 1
        _send(replies, reply)


def _send(fd: int, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd: int) -> Any:
    """The next value sent on ``fd``; None if it ended."""
    head = _read_exactly(fd, _LENGTH.size)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    data = _read_exactly(fd, length)
    if data is None:
        return None
    return pickle.loads(data)


def _read_exactly(fd: int, length: int) -> bytearray | None:
    data = bytearray(length)
    view = memoryview(data)
    done = 0
    while done < length:
        got = os.readv(fd, [view[done:]])
        if got == 0:
            return None
        done += got
    return data
