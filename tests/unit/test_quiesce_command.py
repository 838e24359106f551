"""command hooks: argument lists only, timeouts that kill, output tails, post as the lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from haprotect.errors import QuiesceError
from haprotect.quiesce import OnError, QuiesceSpec, held
from haprotect.quiesce.command import CommandQuiescer

SH = "/bin/sh"


def spec(
    tier: str = "web", timeout: float = 5.0, lease: float = 60.0, **options: object
) -> QuiesceSpec:
    return QuiesceSpec(
        "command", tier, timeout_seconds=timeout, lease_seconds=lease, options=options
    )


def test_a_shell_string_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    bad = spec(pre=f"touch {marker}")
    with pytest.raises(QuiesceError) as caught:
        CommandQuiescer().hold(bad)
    assert str(caught.value) == (
        "command of tier web: option 'pre' must be an argument list (a list of strings), "
        "not a string"
    )
    assert caught.value.hint is not None and '["/bin/sh", "-c"' in caught.value.hint
    assert not marker.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give a 'pre' or a 'post' command"),
        ({"pre": []}, "option 'pre' must be a non-empty list of strings"),
        ({"pre": ["x", 3]}, "option 'pre' must be a non-empty list of strings"),
        ({"post": "echo hi"}, "option 'post' must be an argument list"),
        ({"pre": ["true"], "prre": ["x"]}, "unknown option 'prre'"),
        ({"pre": ["true"], "env": {"A": 1}}, "option 'env' must map names to strings"),
    ],
)
def test_validation_messages(options: dict[str, object], message: str) -> None:
    with pytest.raises(QuiesceError, match=message):
        CommandQuiescer().validate(spec(**options))


def test_held_refuses_a_string_hook_with_on_error_fail_and_holds_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pre-ran"
    good = spec("app", pre=["/usr/bin/touch", str(marker)])
    with (
        pytest.raises(QuiesceError, match="must be an argument list"),
        held([good, spec("db", pre="x")]),
    ):
        pass
    assert not marker.exists()


def test_pre_and_post_run_with_their_output_in_the_reports(tmp_path: Path) -> None:
    quiescer = CommandQuiescer()
    lines = "; ".join(f"echo line{i}" for i in range(30))
    s = spec(pre=[SH, "-c", lines], post=[SH, "-c", "echo done >&2"], tail_lines=3)
    hold = quiescer.hold(s)
    assert hold.details["pre_exit"] == "0"
    assert hold.details["pre_output"] == "line27\nline28\nline29"
    resume = quiescer.resume(s)
    assert resume.details["post_exit"] == "0" and resume.details["post_output"] == "done"


def test_a_failing_pre_hook_says_how_in_one_line() -> None:
    s = spec(pre=[SH, "-c", "echo starting; echo 'disk full' >&2; exit 3"])
    with pytest.raises(QuiesceError) as caught:
        CommandQuiescer().hold(s)
    assert (
        str(caught.value)
        == "command of tier web: pre command /bin/sh exited with status 3: disk full"
    )


def test_a_missing_program_is_one_line() -> None:
    with pytest.raises(QuiesceError, match=r"cannot run /nonexistent/tool: No such file"):
        CommandQuiescer().hold(spec(pre=["/nonexistent/tool"]))


def test_a_hook_that_overruns_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {pidfile}; wait"
    started = time.monotonic()
    with pytest.raises(QuiesceError, match=r"did not finish within 0\.5s \(killed\)"):
        CommandQuiescer().hold(spec(timeout=0.5, pre=[SH, "-c", script]))
    assert time.monotonic() - started < 4
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the hook's background child survived the timeout"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_post_runs_after_a_failed_pre_with_continue(tmp_path: Path) -> None:
    marker = tmp_path / "post-ran"
    s = QuiesceSpec(
        "command",
        "app",
        on_error=OnError.CONTINUE,
        options={"pre": ["/bin/false"], "post": ["/usr/bin/touch", str(marker)]},
    )
    with held([s]) as holding:
        pass
    assert marker.exists()
    assert [(i.phase, i.message) for i in holding.issues] == [
        ("hold", "command of tier app: pre command /bin/false exited with status 1")
    ]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from haprotect.quiesce import QuiesceSpec
    from haprotect.quiesce.command import CommandQuiescer
    spec = QuiesceSpec("command", "app", lease_seconds=float(sys.argv[2]),
                       options={"post": ["/usr/bin/touch", sys.argv[1]]})
    CommandQuiescer().hold(spec)
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_kill_9_of_the_holder_runs_the_post_hook_through_the_lease(tmp_path: Path) -> None:
    marker = tmp_path / "post-ran"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(marker), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not marker.exists()
        os.kill(holder.pid, signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()
    assert _wait_for(marker.exists, 10), "the lease keeper did not run the post hook"


def test_an_expired_lease_runs_post_and_resume_says_so(tmp_path: Path) -> None:
    marker = tmp_path / "post-count"
    quiescer = CommandQuiescer()
    s = spec(lease=0.5, post=[SH, "-c", f"echo x >> {marker}"])
    quiescer.hold(s)
    assert _wait_for(marker.exists, 10)
    with pytest.raises(QuiesceError, match="the lease ended before resume"):
        quiescer.resume(s)
    assert marker.read_text() == "x\n", "post ran twice"


def _wait_for(predicate: object, seconds: float) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
