"""fsfreeze on a real loop-mounted ext4 filesystem: writers block, thaw frees them, leases thaw.

Needs root (mount, fsfreeze). Under CI=true as root it must run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import require_component

from haprotect.errors import QuiesceError
from haprotect.quiesce import QuiesceSpec, held
from haprotect.quiesce.fsfreeze import FsFreezeQuiescer

WRITER = textwrap.dedent(
    """
    import os, sys
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b"written while frozen?\\n")
    os.fsync(fd)
    print("wrote", flush=True)
    """
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from haprotect.quiesce import QuiesceSpec
    from haprotect.quiesce.fsfreeze import FsFreezeQuiescer
    spec = QuiesceSpec("fsfreeze", "storage", lease_seconds=float(sys.argv[2]),
                       options={"mountpoint": sys.argv[1]})
    FsFreezeQuiescer().hold(spec)
    print("held", flush=True)
    time.sleep(120)
    """
)


def _can_mount() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "run the tests as root"
    for tool in ("mkfs.ext4", "mount", "umount", "fsfreeze"):
        if shutil.which(tool) is None:
            return False, f"install {tool} (e2fsprogs, util-linux)"
    return True, ""


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    ok, how = _can_mount()
    require_component("a loop-mountable ext4 filesystem (root, mount, fsfreeze)", ok, how)
    image, mountpoint = tmp_path / "fs.img", tmp_path / "mnt"
    mountpoint.mkdir()
    with image.open("wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    done = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    require_component("loop mounts", done.returncode == 0, done.stderr.strip() or "mount -o loop")
    try:
        yield mountpoint
    finally:
        subprocess.run(
            ["fsfreeze", "--unfreeze", str(mountpoint)], capture_output=True, check=False
        )
        subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False)


def spec(mountpoint: Path, lease: float = 60.0) -> QuiesceSpec:
    return QuiesceSpec(
        "fsfreeze", "storage", lease_seconds=lease, options={"mountpoint": str(mountpoint)}
    )


def start_writer(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )


def finished(process: subprocess.Popen[str], seconds: float) -> bool:
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    return process.returncode == 0


def test_a_writer_blocks_while_frozen_and_proceeds_after_thaw(mounted: Path) -> None:
    target = mounted / "data.txt"
    with held([spec(mounted)]) as holding:
        writer = start_writer(target)
        assert not finished(writer, 1.0), "a write went through a frozen filesystem"
        assert (mounted / "data.txt").exists() is False
    assert finished(writer, 10), "the writer stayed blocked after the thaw"
    assert target.read_text() == "written while frozen?\n"
    (window,) = holding.windows
    assert holding.ok, holding.issues
    assert window.hold_details["fstype"] == "ext4" and window.resume_details["thawed"] == "true"
    assert window.resumed_at is not None and window.held_at is not None
    assert window.resumed_at - window.held_at >= 1.0


def test_kill_9_of_the_holder_thaws_through_the_lease_keeper(mounted: Path) -> None:
    lease = 20.0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(mounted), str(lease)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        writer = start_writer(mounted / "after-kill.txt")
        assert not finished(writer, 0.5), "the filesystem was not frozen"
        os.kill(holder.pid, signal.SIGKILL)
        started = time.monotonic()
    finally:
        holder.kill()
        holder.wait()
    assert finished(writer, lease), "the keeper did not thaw within the lease"
    assert time.monotonic() - started < lease


def test_an_expired_lease_thaws_and_resume_reports_it(mounted: Path) -> None:
    quiescer = FsFreezeQuiescer()
    s = spec(mounted, lease=1.0)
    quiescer.hold(s)
    writer = start_writer(mounted / "late.txt")
    assert not finished(writer, 0.3)
    assert finished(writer, 10), "the lease did not thaw the filesystem"
    with pytest.raises(
        QuiesceError, match=r"the lease on .* ended before resume \(released lease-expired"
    ):
        quiescer.resume(s)


def test_a_second_hold_of_the_same_filesystem_is_refused(mounted: Path) -> None:
    quiescer = FsFreezeQuiescer()
    quiescer.hold(spec(mounted))
    try:
        with pytest.raises(QuiesceError, match="is already held"):
            quiescer.hold(spec(mounted))
    finally:
        quiescer.resume(spec(mounted))
    assert finished(start_writer(mounted / "free.txt"), 5)
