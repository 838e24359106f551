"""cluster: tell Pacemaker to leave a held tier alone (no failover, no fencing, no restart).

A tier held still may look failed to the cluster manager (a frozen
filesystem times out its monitor, a paused application stops answering).
While it is held, the resource is made unmanaged:

- ``mode: resource`` (default): ``crm_resource --resource R
  --set-parameter is-managed --parameter-value false --meta``; at resume
  the previous value is put back, or the attribute deleted if it was not
  set. Pacemaker keeps monitoring an unmanaged resource but acts on nothing.
- ``mode: maintenance``: the whole cluster, ``crm_attribute --name
  maintenance-mode --update true``, restored (or deleted) the same way.

Each change is read back from the CIB and must show the new value. With
``cib_file``, the tools work on that file (``CIB_file``) instead of the
live cluster: for tests and dry runs.

Lease: before the change, a keeper process is started whose release
restores the previous value; if haprotect dies it runs at once, and it runs
when the lease ends if haprotect hangs.

Options: ``mode``, ``resource`` (for mode resource), ``cib_file``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass

from haprotect.errors import QuiesceError
from haprotect.lease import Lease
from haprotect.quiesce import options as opt
from haprotect.quiesce.base import HoldReport, QuiesceSpec, ResumeReport
from haprotect.quiesce.options import renew_held
from haprotect.quiesce.run import resolve

log = logging.getLogger(__name__)

OPTIONS = ("mode", "resource", "cib_file")
HINT = "install Pacemaker's CLI (Debian: apt-get install pacemaker-cli-utils)"


@dataclass(slots=True)
class _Held:
    target: _Attribute
    previous: str | None
    lease: Lease | None = None


@dataclass(frozen=True, slots=True)
class _Attribute:
    """One attribute the quiescer reads, sets and restores through a Pacemaker tool."""

    spec: QuiesceSpec
    what: str  #: "resource web_front is-managed" or "maintenance-mode"
    tool: str
    base: tuple[str, ...]  #: the argument list naming the attribute
    env: dict[str, str]

    def argv(self, *action: str) -> list[str]:
        return [self.tool, *self.base, *action]

    @property
    def is_resource(self) -> bool:
        return os.path.basename(self.tool) == "crm_resource"

    def get(self) -> str | None:
        if self.is_resource:
            done = self._run(self.argv("--get-parameter", "is-managed", "--meta", "--quiet"))
            absent = "not found for" in done.stderr  # "Attribute 'is-managed' not found for 'R'"
        else:
            done = self._run(self.argv("--query", "--quiet"))
            absent = done.returncode == 105  # ENXIO: no such attribute
        value = done.stdout.strip().splitlines()
        if value and done.returncode == 0:
            return value[-1].strip()
        if done.returncode == 0 or absent:
            return None
        raise self._failed("read", done)

    def set_argv(self, value: str | None) -> list[str]:
        if self.is_resource:
            if value is None:
                return self.argv("--delete-parameter", "is-managed", "--meta")
            return self.argv("--set-parameter", "is-managed", "--parameter-value", value, "--meta")
        return self.argv("--delete") if value is None else self.argv("--update", value)

    def set(self, value: str | None) -> None:
        done = self._run(self.set_argv(value))
        if done.returncode != 0:
            raise self._failed("set", done)
        now = self.get()
        if now != value:
            raise opt.fail(
                self.spec,
                f"{self.what} reads back as {now or 'unset'}, not {value or 'unset'}",
            )

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.spec.timeout_seconds,
                env=self.env,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise opt.fail(
                self.spec, f"{argv[0]} did not finish within {self.spec.timeout_seconds:g}s"
            ) from None
        except OSError as exc:
            raise opt.fail(self.spec, f"cannot run {argv[0]}: {exc.strerror or exc}") from None

    def _failed(self, doing: str, done: subprocess.CompletedProcess[str]) -> QuiesceError:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        said = next((ln for ln in lines if "Error" in ln), lines[-1] if lines else "")
        tool = os.path.basename(self.tool)
        return opt.fail(
            self.spec,
            f"cannot {doing} {self.what}: {tool} exited with status {done.returncode}"
            + (f": {said}" if said else ""),
        )


class ClusterQuiescer:
    """The ``cluster`` quiescer; remembers each hold's previous setting, put back at resume."""

    name = "cluster"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        opt.known(spec, OPTIONS)
        mode = opt.choice(spec, "mode", ("resource", "maintenance"), "resource")
        if mode == "resource":
            opt.string(spec, "resource")
        elif "resource" in spec.options:
            raise opt.fail(spec, "option 'resource' is for mode resource only")
        opt.optional_string(spec, "cib_file")

    def _attribute(self, spec: QuiesceSpec) -> _Attribute:
        self.validate(spec)
        env = dict(os.environ)
        cib_file = opt.optional_string(spec, "cib_file")
        if cib_file is not None:
            if not os.path.isfile(cib_file):
                raise opt.fail(spec, f"no CIB file {cib_file}")
            env["CIB_file"] = os.path.abspath(cib_file)
        if opt.choice(spec, "mode", ("resource", "maintenance"), "resource") == "resource":
            tool, resource = resolve("crm_resource"), opt.string(spec, "resource")
            if tool is None:
                raise QuiesceError("crm_resource is not installed", hint=HINT)
            return _Attribute(
                spec, f"resource {resource} is-managed", tool, ("--resource", resource), env
            )
        tool = resolve("crm_attribute")
        if tool is None:
            raise QuiesceError("crm_attribute is not installed", hint=HINT)
        base = ("--type", "crm_config", "--name", "maintenance-mode")
        return _Attribute(spec, "maintenance-mode", tool, base, env)

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        target = self._attribute(spec)
        with self._lock:
            if spec.key in self._held:
                raise opt.fail(spec, "already held")
        previous = target.get()
        state = _Held(target, previous)
        with self._lock:
            self._held[spec.key] = state
        state.lease = Lease.start(
            target.set_argv(previous), spec.lease_seconds, what=spec.label, env=target.env
        )
        held_value = "false" if target.is_resource else "true"
        target.set(held_value)
        log.info("%s: %s set to %s", spec.label, target.what, held_value)
        return HoldReport(
            time.time(),
            {"attribute": target.what, "previous": previous or "unset", "value": held_value},
        )

    def renew(self, spec: QuiesceSpec) -> None:
        with self._lock:
            state = self._held.get(spec.key)
        renew_held(spec, state.lease if state is not None else None)

    def resume(self, spec: QuiesceSpec) -> ResumeReport:
        with self._lock:
            state = self._held.pop(spec.key, None)
        if state is None:
            return ResumeReport(time.time())
        try:
            state.target.set(state.previous)
        except QuiesceError:
            if state.lease is not None:
                state.lease.release_now()  # the keeper tries too, now
            raise
        released = state.lease.cancel() if state.lease is not None else None
        if released is not None:
            raise opt.fail(
                spec,
                f"the lease ended before resume ({released}); the cluster managed the tier "
                "again while it was held",
            )
        log.info("%s: %s restored to %s", spec.label, state.target.what, state.previous or "unset")
        return ResumeReport(
            time.time(), {"attribute": state.target.what, "restored": state.previous or "unset"}
        )
