"""The pool of forked processes: requests, the shared buffer, failures, endings."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from haprotect.repo.process import forking, forkpool
from haprotect.repo.process.forkpool import ForkPool, PooledProcess, ProcessLost

# a process that keeps a pipe end it should not makes closing the pool wait forever
pytestmark = pytest.mark.timeout(60)


def echo_handler() -> forkpool.Handler:
    """Writes the request's bytes to the shared buffer; answers with its pid and a count."""
    served = [0]

    def handle(request: Any, shared: memoryview) -> Any:
        if request == "boom":
            raise RuntimeError("asked to fail")
        if request == "exit":
            os._exit(3)
        if request == "sleep":
            time.sleep(60)
        data = bytes(request)
        shared[: len(data)] = data
        served[0] += 1
        return os.getpid(), served[0], len(data)

    return handle


@pytest.fixture
def pool() -> Iterator[ForkPool]:
    made = ForkPool(echo_handler, 1 << 16, 2)
    made.start()
    yield made
    made.close(kill=True)


def reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_each_process_answers_through_its_own_buffer(pool: ForkPool) -> None:
    first, second = pool.take(), pool.take()
    assert first is not None and second is not None and first.pid != second.pid
    assert pool.take() is None  # both are taken
    assert first.call(b"one" * 1000) == (first.pid, 1, 3000)
    assert second.call(b"two") == (second.pid, 1, 3)
    assert bytes(first.buffer[:6]) == b"oneone"
    assert bytes(second.buffer[:3]) == b"two"
    # a large request and a second one on the same process keep its state
    big = os.urandom(60_000)
    assert first.call(big) == (first.pid, 2, 60_000)
    assert bytes(first.buffer[:60_000]) == big
    pool.give(first)
    pool.give(second)
    assert pool.served() == 3
    assert {pool.take(), pool.take()} == {first, second}


def test_a_failing_handler_loses_its_process_only(pool: ForkPool) -> None:
    failing = pool.take()
    other = pool.take()
    assert failing is not None and other is not None
    with pytest.raises(ProcessLost, match="failed: RuntimeError: asked to fail"):
        failing.call("boom")
    pool.lose(failing, "test")
    assert reaped(failing.pid)
    assert pool.lost == ["test"]
    assert other.call(b"still here")[2] == 10
    pool.give(other)
    assert pool.take() is other
    assert pool.take() is None


def test_a_process_that_dies_is_reported_with_how(pool: ForkPool) -> None:
    process = pool.take()
    assert process is not None
    with pytest.raises(ProcessLost, match="ended: exit status 3"):
        process.call("exit")
    killed = pool.take()
    assert killed is not None
    os.kill(killed.pid, signal.SIGKILL)
    with pytest.raises(ProcessLost, match="killed by signal 9"):
        killed.call(b"x")
    for lost in (process, killed):
        pool.lose(lost, "test")
        assert reaped(lost.pid)


def test_close_ends_idle_processes_and_reaps_them() -> None:
    pool = ForkPool(echo_handler, 4096, 3)
    pool.start()
    taken = []
    while (process := pool.take()) is not None:
        process.call(b"x")
        taken.append(process)
    for process in taken:
        pool.give(process)
    pids = [process.pid for process in taken]
    assert len(set(pids)) == 3
    for pid in pids:
        assert not reaped(pid)
    pool.close()
    assert all(reaped(pid) for pid in pids)


def test_a_busy_process_ends_with_its_parent() -> None:
    """Killed with its parent even in the middle of a request (an idle one sees its pipe end)."""
    read_end, write_end = os.pipe()
    parent = os.fork()
    if parent == 0:  # the parent of the pool, in a process of its own
        os.close(read_end)
        pool = ForkPool(echo_handler, 4096, 1)
        pool.start()
        process = pool.take()
        assert process is not None
        forkpool._send(process.fds()[0], "sleep")  # the process is now in its handler
        os.write(write_end, str(process.pid).encode())
        time.sleep(60)
        os._exit(0)
    os.close(write_end)
    child = int(os.read(read_end, 32))
    os.close(read_end)
    time.sleep(0.2)
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail(f"pooled process {child} outlived its parent")


def open_fds(pid: int) -> list[int]:
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


def test_a_process_keeps_nothing_of_its_parent_but_its_own_pipe_ends(
    tmp_path: Path, pool: ForkPool
) -> None:
    """Another pool's pipes, an embedding program's files or sockets: all closed in it."""
    with open(tmp_path / "held", "wb") as held:
        other = ForkPool(echo_handler, 4096, 1)
        other.start()
        try:
            process = other.take()
            assert process is not None
            process.call(b"serving")  # so it is past its start
            # its two pipe ends, and the standard streams
            assert len(open_fds(process.pid)) == 5
            assert held.fileno() in open_fds(os.getpid())
        finally:
            other.close()
    # the pool's own processes, forked before: closing the other pool did not wait on them
    first = pool.take()
    assert first is not None and first.call(b"still") == (first.pid, 1, 5)


def test_no_room_for_a_process_leaves_the_work_to_the_callers() -> None:
    def refuse() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    pool = ForkPool(echo_handler, 4096, 2, fork=partial(forking.fork_helper, fork=refuse))
    pool.start()
    assert pool.take() is None
    assert pool.lost == ["not forked: Resource temporarily unavailable"]
    pool.close()


def test_a_lost_process_is_not_killed_again_after_it_was_reaped() -> None:
    """Its pid may belong to another process by then."""
    kills: list[int] = []
    pool = ForkPool(echo_handler, 4096, 2, kill=lambda pid, sig: kills.append(pid))
    pool.start()
    try:
        process = pool.take()
        assert isinstance(process, PooledProcess)
        with pytest.raises(ProcessLost):
            process.call("exit")
        pool.lose(process, "test")
        assert kills == []
    finally:
        pool.close()


def test_with_sigchld_ignored_processes_end_and_fail_as_usual() -> None:
    """A daemon may ignore SIGCHLD: then the system reaps the processes, not the pool."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        pool = ForkPool(echo_handler, 4096, 2)
        pool.start()
        process = pool.take()
        assert process is not None
        with pytest.raises(ProcessLost, match="ended"):
            process.call("exit")
        pool.lose(process, "test")
        other = pool.take()
        assert other is not None and other.call(b"x")[2] == 1
        pool.give(other)
        pool.close()
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_an_interrupt_as_a_process_is_forked_leaves_none_behind() -> None:
    """A KeyboardInterrupt once the child exists (raised as the signal mask is restored)."""
    forked: list[int] = []
    real_fork = forking._fork

    def noting() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    real_mask = signal.pthread_sigmask

    def interrupted(how: int, mask: Any) -> Any:
        old = real_mask(how, mask)
        if how == signal.SIG_SETMASK and forked:
            raise KeyboardInterrupt
        return old

    fork = partial(forking.fork_helper, fork=noting, set_mask=interrupted)
    pool = ForkPool(echo_handler, 4096, 1, fork=fork)
    with pytest.raises(KeyboardInterrupt):
        pool.start()
    assert len(forked) == 1 and reaped(forked[0])
    assert pool.take() is None
    pool.close()
