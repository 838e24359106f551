"""The lease keeper process: runs a release command unless its holder says otherwise.

Started by :class:`haprotect.quiesce.lease.Lease` *before* a tier is held,
in its own session (``setsid``), as ``python -I -B lease_keeper.py SECONDS
[--log FILE] -- ARGV...``. It uses the standard library only and imports
everything before it says ``ready``, so once the tier is held (a frozen
filesystem, say) it never needs to read or write anything but its pipes.

Its stdin is a pipe from the holder: ``renew SECONDS`` extends the lease,
``cancel`` ends the keeper without running anything (the holder resumed the
tier itself). End of file (the holder died, even by kill -9) or the end of
the lease runs ARGV (the release: ``fsfreeze --unfreeze /mnt``, restoring a
Pacemaker attribute, a post hook), retried a few times if it fails. Each
step is one line on stdout (``ready``, ``renewed``, ``cancelled``,
``released REASON rc=N``), to syslog (ident ``haprotect-lease``), and,
given ``--log``, to that file.

This file is run by path, not imported by haprotect.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import syslog
import time

ATTEMPTS = 3
RELEASE_TIMEOUT = 60.0


def say(line: str, log_path: str | None) -> None:
    with contextlib.suppress(OSError):  # the holder is gone: nobody reads
        os.write(1, (line + "\n").encode())
    if line != "ready":
        syslog.syslog(syslog.LOG_NOTICE, line)
    if log_path:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError), open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{stamp} lease keeper {os.getpid()}: {line}\n")


def release(argv: list[str], reason: str, log_path: str | None) -> int:
    code = -1
    for attempt in range(ATTEMPTS):
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=RELEASE_TIMEOUT,
                check=False,
            )
            code = done.returncode
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"release attempt {attempt + 1} failed: {exc}", log_path)
            code = -1
        if code == 0:
            break
        time.sleep(0.5 * (attempt + 1))
    say(f"released {reason} rc={code}", log_path)
    return code


def keep(seconds: float, argv: list[str], log_path: str | None) -> int:
    deadline = time.monotonic() + seconds
    pending = b""
    say("ready", log_path)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return release(argv, "lease-expired", log_path)
        readable, _, _ = select.select([0], [], [], remaining)
        if not readable:
            continue
        try:
            chunk = os.read(0, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            return release(argv, "holder-gone", log_path)
        pending += chunk
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            words = line.decode("ascii", "replace").split()
            if words == ["cancel"]:
                say("cancelled", log_path)
                return 0
            if len(words) == 2 and words[0] == "renew":
                try:
                    deadline = time.monotonic() + float(words[1])
                except ValueError:
                    continue
                say("renewed", log_path)


def main(args: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    syslog.openlog("haprotect-lease", syslog.LOG_PID, syslog.LOG_DAEMON)
    log_path = None
    if "--" not in args or not args:
        sys.stderr.write("usage: lease_keeper.py SECONDS [--log FILE] -- ARGV...\n")
        return 2
    split = args.index("--")
    head, argv = args[:split], args[split + 1 :]
    if len(head) == 3 and head[1] == "--log":
        log_path = head[2]
    elif len(head) != 1 or not argv:
        sys.stderr.write("usage: lease_keeper.py SECONDS [--log FILE] -- ARGV...\n")
        return 2
    return keep(float(head[0]), argv, log_path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
