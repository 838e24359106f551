"""The pool of forked processes: requests, the shared buffer, failures, endings."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from haprotect.repo import forkpool
from haprotect.repo.forkpool import ForkPool, PooledProcess, ProcessLost


def echo_handler() -> forkpool.Handler:
    """Writes the request's bytes to the shared buffer; answers with its pid and a count."""
    served = [0]

    def handle(request: Any, shared: memoryview) -> Any:
        if request == "boom":
            raise RuntimeError("asked to fail")
        if request == "exit":
            os._exit(3)
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


def test_a_process_ends_with_its_parent() -> None:
    """A pooled process of a parent killed with SIGKILL does not outlive it."""
    read_end, write_end = os.pipe()
    parent = os.fork()
    if parent == 0:  # the parent of the pool, in a process of its own
        os.close(read_end)
        pool = ForkPool(echo_handler, 4096, 1)
        pool.start()
        process = pool.take()
        assert process is not None
        os.write(write_end, str(process.pid).encode())
        time.sleep(60)
        os._exit(0)
    os.close(write_end)
    child = int(os.read(read_end, 32))
    os.close(read_end)
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"pooled process {child} outlived its parent")


def test_no_room_for_a_process_leaves_the_work_to_the_callers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(forkpool.os, "fork", refuse)
    pool = ForkPool(echo_handler, 4096, 2)
    pool.start()
    assert pool.take() is None
    assert pool.lost == ["not forked: Resource temporarily unavailable"]
    pool.close()


def test_a_lost_process_is_not_killed_again_after_it_was_reaped(
    pool: ForkPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its pid may belong to another process by then."""
    process = pool.take()
    assert isinstance(process, PooledProcess)
    with pytest.raises(ProcessLost):
        process.call("exit")
    kills: list[int] = []
    monkeypatch.setattr(forkpool.os, "kill", lambda pid, sig: kills.append(pid))
    pool.lose(process, "test")
    assert kills == []
