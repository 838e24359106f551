"""command: a tier's own pre and post hooks, as argument lists.

``pre`` runs at hold, ``post`` at resume; each is an argument list such as
``["/usr/local/bin/app-ctl", "pause"]``. A string is refused: a shell
string built from cluster values would need quoting nobody can guarantee;
a shell, where one is really wanted, is written out as ``["/bin/sh", "-c",
"..."]``. Each command runs with the spec's timeout in its own process
group (killed whole when it overruns), and the last lines of its output
go into the report.

``post`` always runs when resume is called, even when ``pre`` failed (it
is the undo, so it must be safe to run at any time). With ``lease: true``
(the default when there is a ``post``), a keeper process runs ``post`` if
haprotect dies or the lease ends before resume.

Options: ``pre``, ``post`` (argument lists, at least one), ``cwd``, ``env``
(a mapping of extra environment variables), ``lease`` (boolean),
``tail_lines`` (default 20).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from haprotect.errors import QuiesceError
from haprotect.lease import Lease
from haprotect.quiesce import options as opt
from haprotect.quiesce.base import HoldReport, QuiesceSpec, ResumeReport
from haprotect.quiesce.run import Finished, run_argv

log = logging.getLogger(__name__)

OPTIONS = ("pre", "post", "cwd", "env", "lease", "tail_lines")


def _env(spec: QuiesceSpec) -> dict[str, str] | None:
    extra = spec.options.get("env")
    if extra is None:
        return None
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise opt.fail(spec, "option 'env' must map names to strings")
    return {**os.environ, **extra}


class CommandQuiescer:
    """The ``command`` quiescer; each hold's lease runs ``post`` should haprotect die."""

    name = "command"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        opt.known(spec, OPTIONS)
        pre, post = opt.argv(spec, "pre"), opt.argv(spec, "post")
        if pre is None and post is None:
            raise opt.fail(spec, "give a 'pre' or a 'post' command (an argument list)")
        opt.optional_string(spec, "cwd")
        _env(spec)
        opt.boolean(spec, "lease", post is not None)
        opt.number(spec, "tail_lines", 20, minimum=1)

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        self.validate(spec)
        post = opt.argv(spec, "post")
        if post is not None and opt.boolean(spec, "lease", True):
            with self._lock:
                if spec.key in self._leases:
                    raise opt.fail(spec, "already held")
            lease = Lease.start(
                post,
                spec.lease_seconds,
                what=spec.label,
                env=_env(spec),
                cwd=opt.optional_string(spec, "cwd") or "/",
            )
            with self._lock:
                self._leases[spec.key] = lease
        details: dict[str, str] = {}
        pre = opt.argv(spec, "pre")
        if pre is not None:
            done = self._run(spec, pre)
            details.update(_details("pre", done))
            if not done.ok:
                raise opt.fail(spec, f"pre command {done.describe(spec.timeout_seconds)}")
        return HoldReport(time.time(), details)

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        with self._lock:
            lease = self._leases.pop(spec.key, None)
        released = lease.cancel() if lease is not None else None
        if released is not None:
            # The keeper already ran the post command: running it twice is not our call.
            raise opt.fail(
                spec, f"the lease ended before resume and the post command ran then ({released})"
            )
        post = opt.argv(spec, "post")
        if post is None:
            return ResumeReport(time.time())
        done = self._run(spec, post)
        if not done.ok:
            raise opt.fail(spec, f"post command {done.describe(spec.timeout_seconds)}")
        return ResumeReport(time.time(), _details("post", done))

    def _run(self, spec: QuiesceSpec, argv: list[str]) -> Finished:
        lines = int(opt.number(spec, "tail_lines", 20, minimum=1))
        try:
            done = run_argv(
                argv,
                spec.timeout_seconds,
                env=_env(spec),
                cwd=opt.optional_string(spec, "cwd"),
                tail_lines=lines,
            )
        except OSError as exc:
            raise QuiesceError(
                f"{spec.label}: cannot run {argv[0]}: {exc.strerror or exc}"
            ) from None
        log.info("%s: %s", spec.label, done.describe(spec.timeout_seconds))
        return done


def _details(phase: str, done: Finished) -> dict[str, str]:
    return {
        f"{phase}_exit": "timeout" if done.returncode is None else str(done.returncode),
        f"{phase}_seconds": f"{done.seconds:.3f}",
        f"{phase}_output": done.output,
    }
