"""fsfreeze: freeze a filesystem for the cut, thaw it after, even if we die.

``fsfreeze --freeze MOUNTPOINT`` flushes the filesystem and blocks every
writer on it until ``fsfreeze --unfreeze``; readers go on. It needs root, a
mount point, and a filesystem that implements freezing (ext3/4, XFS, btrfs,
F2FS, JFS, NILFS2, ReiserFS, GFS2, OCFS2, ...; not tmpfs, proc, NFS, FUSE,
overlayfs, squashfs, vfat). Each is checked first, with a one-line message.

The thaw must never wait on the frozen filesystem, so the quiescer refuses
a filesystem that holds ``/``, the Python running haprotect or ``fsfreeze``
itself, and the thaw path only runs ``fsfreeze
--unfreeze`` (no files are written on the way). Logging to a file on the
frozen filesystem would block too: keep logs elsewhere.

Lease: before freezing, a keeper process (:mod:`haprotect.lease`)
is started, in its own session, with ``fsfreeze --unfreeze MOUNTPOINT`` as
its release. If haprotect dies (kill -9 included) the keeper thaws at once;
if haprotect hangs, it thaws when the lease ends.

Options: ``mountpoint`` (required).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from haprotect.errors import QuiesceError
from haprotect.lease import Lease
from haprotect.quiesce import options as opt
from haprotect.quiesce.base import HoldReport, QuiesceSpec, ResumeReport
from haprotect.quiesce.options import renew_held
from haprotect.quiesce.run import resolve, run_argv

log = logging.getLogger(__name__)

#: Filesystem types whose kernel driver cannot freeze (or that freezing would not make sense for).
UNSUPPORTED = frozenset(
    {
        "tmpfs",
        "ramfs",
        "devtmpfs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "autofs",
        "overlay",
        "squashfs",
        "iso9660",
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "9p",
        "vfat",
        "msdos",
        "exfat",
        "zfs",
    }
)


@dataclass(slots=True)
class _Frozen:
    mountpoint: str
    lease: Lease | None
    frozen: bool = False  #: a freeze was attempted and may have landed
    confirmed: bool = False  #: fsfreeze --freeze said it froze


def mount_fstype(mountpoint: str) -> str | None:
    """The type of the filesystem mounted last on ``mountpoint`` (from mountinfo)."""
    fstype = None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if sep and len(fields) > 4 and _unescape(fields[4]) == mountpoint:
            fstype = right.split()[0]
    return fstype


def _unescape(field: str) -> str:
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")).replace(
        "\\134", "\\"
    )


class FsFreezeQuiescer:
    """The ``fsfreeze`` quiescer; keeps each frozen mount point until it is thawed."""

    name = "fsfreeze"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Frozen] = {}

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        opt.known(spec, ["mountpoint"])
        if not os.path.isabs(opt.string(spec, "mountpoint")):
            raise opt.fail(spec, "option 'mountpoint' must be an absolute path")

    def check(self, spec: QuiesceSpec) -> tuple[str, str]:
        """Whether this machine can freeze it: (mount point, fsfreeze path) or a one-line error."""
        self.validate(spec)
        mountpoint = os.path.realpath(opt.string(spec, "mountpoint"))
        if os.geteuid() != 0:
            raise QuiesceError("fsfreeze needs root", hint="run the backup as root, or drop it")
        if not os.path.ismount(mountpoint):
            raise QuiesceError(f"fsfreeze: {mountpoint} is not a mount point")
        fstype = mount_fstype(mountpoint) or "unknown"
        if fstype in UNSUPPORTED or fstype.startswith("fuse"):
            raise QuiesceError(f"fsfreeze: {mountpoint} is {fstype}, which cannot be frozen")
        program = resolve("fsfreeze")
        if program is None:
            raise QuiesceError("fsfreeze is not installed", hint="install util-linux")
        device = os.stat(mountpoint).st_dev
        for needed in ("/", sys.executable, program):
            if os.stat(needed).st_dev == device:
                raise QuiesceError(
                    f"fsfreeze: {mountpoint} holds {needed}, which the thaw needs; "
                    "freezing it could block the thaw"
                )
        return mountpoint, program

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        mountpoint, program = self.check(spec)
        with self._lock:
            if spec.key in self._held:
                raise QuiesceError(f"fsfreeze: {mountpoint} is already held")
            state = _Frozen(mountpoint, None)
            self._held[spec.key] = state
        state.lease = Lease.start(
            [program, "--unfreeze", mountpoint], spec.lease_seconds, what=f"fsfreeze {mountpoint}"
        )
        state.frozen = True  # from here on, resume must thaw (a timed-out freeze may still land)
        done = run_argv([program, "--freeze", mountpoint], spec.timeout_seconds)
        if not done.ok:
            # Killed after a timeout, the ioctl may still have frozen it: resume thaws.
            state.frozen = done.returncode is None
            why = done.describe(spec.timeout_seconds)
            raise QuiesceError(f"fsfreeze: cannot freeze {mountpoint}: {why}")
        state.confirmed = True
        log.info("froze %s", mountpoint)
        return HoldReport(
            time.time(),
            {
                "mountpoint": mountpoint,
                "fstype": mount_fstype(mountpoint) or "unknown",
                "lease_seconds": f"{spec.lease_seconds:g}",
                "lease_keeper_pid": str(state.lease.pid),
            },
        )

    def renew(self, spec: QuiesceSpec) -> None:
        with self._lock:
            state = self._held.get(spec.key)
        renew_held(spec, state.lease if state is not None else None)

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        with self._lock:
            state = self._held.pop(spec.key, None)
        if state is None:
            return ResumeReport(time.time(), {"thawed": "false", "reason": "not held"})
        details = {"mountpoint": state.mountpoint}
        early = state.lease.released() if state.lease is not None else None
        if early is not None:
            state.lease = None
            raise QuiesceError(
                f"fsfreeze: the lease on {state.mountpoint} ended before resume ({early}); "
                "the filesystem was thawed early and the cut may not be consistent"
            )
        if state.frozen:
            program = resolve("fsfreeze") or "fsfreeze"
            done = run_argv([program, "--unfreeze", state.mountpoint], spec.timeout_seconds)
            details["thawed"] = "true" if done.ok else "false"
            if not done.ok and state.confirmed:
                # The keeper retries the thaw at once, as if we had died.
                said = state.lease.release_now() if state.lease is not None else None
                why = done.describe(spec.timeout_seconds)
                raise QuiesceError(
                    f"fsfreeze: cannot thaw {state.mountpoint}: {why}"
                    + (f"; the lease keeper then said: {said}" if said else "")
                )
        if state.lease is not None:
            state.lease.cancel()
        log.info("thawed %s", state.mountpoint)
        return ResumeReport(time.time(), details)
