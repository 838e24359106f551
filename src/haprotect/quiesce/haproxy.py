"""haproxy: hold a web tier at its HAProxy, through the runtime API.

Two methods, chosen by the option ``method`` (``auto`` by default):

- ``frontend``: for each held frontend, read its ``maxconn`` (``show
  stat``, ``slim``), then ``set maxconn frontend NAME 0``: HAProxy accepts
  no new connection on it; they wait in the listening socket's queue. At
  resume the remembered values are put back and the waiting connections are
  accepted and served.
- ``global``: HAProxy 2.4 to 3.0 before the fix of haproxy issue 2726
  (September 2024; Debian 12's 2.6.12 among them) deadlock when a
  frontend's ``maxconn`` is raised while connections wait, and their
  watchdog kills the process. On those, the quiescer opens one connection
  of its own to a held frontend (the *pin*, at the address of ``pin`` or the
  frontend's first ``bind``), then ``set maxconn global 1``: the pin takes
  the one slot and no other connection is accepted, on any frontend of that
  HAProxy (the runtime API's own are not counted). Resume puts the global
  value back, a path without the deadlock, and closes the pin. The pin must
  stay open for the hold: keep the frontend's ``timeout client`` (and
  ``timeout http-request``) longer than a hold.
- ``auto``: ``frontend`` on HAProxy 3.1 and later, or on the exact version
  named by ``allow_version`` (a build that carries the fix); ``global``
  otherwise.

Both read the new value back, and wait (up to the spec's timeout) until the
connections open at the hold have finished (every frontend's ``scur``, or
all but the pin), since an open keep-alive connection could still pass
requests; either check failing fails the hold. At resume, a frontend that
accepted connections while held (its ``stot`` grew: a pin closed by a
timeout, say) fails the resume: the cut may not be consistent.

Lease: before the first change, a keeper process (:mod:`haprotect.lease`)
is started whose release runs :mod:`haprotect.quiesce.haproxy_api` by path
to put the values back: at once if haprotect dies (kill -9 included), or
when the lease ends if it hangs.

Options: ``socket`` (the runtime API: a unix socket path or ``host:port``),
``frontends`` (names), ``conffile`` (read what is not given from an HAProxy
configuration: its admin ``stats socket``, every ``frontend`` section, their
``bind`` addresses), ``method``, ``pin`` (``host:port``), ``allow_version``.
"""

from __future__ import annotations

import logging
import re
import socket as sockets
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from haprotect.errors import QuiesceError
from haprotect.lease import Lease
from haprotect.quiesce import haproxy_api as api
from haprotect.quiesce import options as opt
from haprotect.quiesce.base import HoldReport, QuiesceSpec, ResumeReport
from haprotect.quiesce.haproxy_config import ConfigError, HaproxyConfig, read_config
from haprotect.quiesce.options import renew_held

log = logging.getLogger(__name__)

OPTIONS = ("socket", "frontends", "conffile", "method", "pin", "allow_version")
METHODS = ("auto", "frontend", "global")
RELEASE = Path(api.__file__)
#: The first release without the restore deadlock on every branch.
FIXED = (3, 1)
#: The first release with it (``set maxconn frontend`` resuming listeners under the proxy lock).
BROKEN_SINCE = (2, 4)
_VERSION = re.compile(r"(\d+)\.(\d+)")
_POLL = 0.05


@dataclass(frozen=True, slots=True)
class Target:
    """Where a spec's HAProxy is, which frontends it holds, and where a pin connects."""

    socket: str
    frontends: tuple[str, ...]
    pin: str | None = None


@dataclass(slots=True)
class _Held:
    target: Target
    method: str
    previous: dict[str, int] = field(default_factory=dict)  #: frontend (or "global") -> maxconn
    #: connections the frontends had accepted once they stopped accepting (None: not yet)
    accepted: int | None = None
    pin: sockets.socket | None = None
    lease: Lease | None = None


def deadlocks(version: str, allowed: str | None) -> bool:
    """Whether HAProxy ``version`` has the restore deadlock (see the module docstring)."""
    if allowed is not None and version == allowed:
        return False
    found = _VERSION.match(version)
    if found is None:
        return True
    release = (int(found.group(1)), int(found.group(2)))
    return BROKEN_SINCE <= release < FIXED


class HaproxyQuiescer:
    """The ``haproxy`` quiescer; remembers each hold's previous ``maxconn`` values and pin."""

    name = "haproxy"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}

    def applies_to(self, spec: QuiesceSpec) -> bool:
        return spec.kind == self.name

    def validate(self, spec: QuiesceSpec) -> None:
        opt.known(spec, OPTIONS)
        opt.choice(spec, "method", METHODS, "auto")
        opt.optional_string(spec, "allow_version")
        conffile = opt.optional_string(spec, "conffile")
        for name in ("socket", "pin"):
            address = opt.optional_string(spec, name)
            if address is not None:
                try:
                    api.split_address(address)
                except api.RuntimeApiError as exc:
                    raise opt.fail(spec, f"option {name!r}: {exc}") from None
        if spec.options.get("socket") is None and conffile is None:
            raise opt.fail(spec, "give 'socket' (the runtime API) or 'conffile'")
        if self._names(spec) is None and conffile is None:
            raise opt.fail(spec, "give 'frontends' (their names) or 'conffile'")

    def target(self, spec: QuiesceSpec) -> Target:
        """The runtime API, frontends and pin address of ``spec``, reading its ``conffile``."""
        self.validate(spec)
        socket = opt.optional_string(spec, "socket")
        names = self._names(spec)
        pin = opt.optional_string(spec, "pin")
        conffile = opt.optional_string(spec, "conffile")
        config = self._config(spec, conffile) if conffile is not None else None
        if socket is None and config is not None:
            if config.socket is None:
                raise opt.fail(
                    spec,
                    f"{config.path} has no 'stats socket' in its global section",
                    hint="add 'stats socket /run/haproxy/admin.sock level admin', "
                    "or give the option 'socket'",
                )
            socket = config.socket
        if names is None and config is not None:
            if not config.frontends:
                raise opt.fail(spec, f"{config.path} has no frontend section")
            names = config.frontends
        if pin is None and config is not None and names is not None:
            pin = next((a for n in names for a in config.binds.get(n, ()) if ":" in a), None)
        assert socket is not None and names is not None
        return Target(socket, names, pin)

    def hold(self, spec: QuiesceSpec) -> HoldReport:
        target = self.target(spec)
        with self._lock:
            if spec.key in self._held:
                raise opt.fail(spec, "already held")
        version = self._info(spec, target).get("Version", "")
        method = self._method(spec, target, version)
        state = _Held(target, method, self._previous(spec, target, method))
        with self._lock:
            self._held[spec.key] = state
        release = [sys.executable, "-I", "-B", str(RELEASE), target.socket]
        if method == "frontend":
            release.append("set-maxconn")
            for name, limit in state.previous.items():
                release += [name, str(limit)]
        else:
            release += ["set-maxconn-global", str(state.previous["global"])]
        state.lease = Lease.start(release, spec.lease_seconds, what=spec.label)
        deadline = time.monotonic() + spec.timeout_seconds
        if method == "frontend":
            for name in target.frontends:
                self._set(spec, target, name, 0)
        else:
            state.pin = self._pin(spec, target, deadline)
            self._set_global(spec, target, 1)
        state.accepted = self._accepted(self._stats(spec, target), target)
        drained = self._drain(spec, state, deadline)
        log.info("%s: %s held at %s (%s)", spec.label, ", ".join(target.frontends),
                 target.socket, method)  # fmt: skip
        return HoldReport(
            time.time(),
            {
                "socket": target.socket,
                "frontends": ",".join(target.frontends),
                "method": method,
                "previous_maxconn": _values(state.previous),
                "haproxy_version": version,
                "drained_seconds": f"{drained:.3f}",
                "lease_seconds": f"{spec.lease_seconds:g}",
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
            return ResumeReport(time.time())
        target = state.target
        leaked = None
        try:
            if state.accepted is not None:
                with suppress(QuiesceError):
                    leaked = self._accepted(self._stats(spec, target), target) - state.accepted
            for name, limit in state.previous.items():
                if name == "global":
                    self._set_global(spec, target, limit)
                else:
                    self._set(spec, target, name, limit)
        except QuiesceError:
            if state.lease is not None:
                state.lease.release_now()  # the keeper tries too, now
            raise
        finally:
            if state.pin is not None:
                state.pin.close()
        released = state.lease.cancel() if state.lease is not None else None
        if released is not None:
            raise opt.fail(
                spec,
                f"the lease ended before resume ({released}); HAProxy accepted connections "
                "again while the tier was supposed to be held",
            )
        if leaked:
            raise opt.fail(
                spec,
                f"HAProxy at {target.socket} accepted {leaked} connection(s) on "
                f"{', '.join(target.frontends)} while held; the cut may not be consistent",
                hint="with method global, keep the frontend's client timeouts longer than a hold",
            )
        log.info("%s: maxconn restored (%s)", spec.label, _values(state.previous))
        return ResumeReport(
            time.time(), {"socket": target.socket, "restored": _values(state.previous)}
        )

    # -- the runtime API, with errors naming the spec -----------------------

    def _names(self, spec: QuiesceSpec) -> tuple[str, ...] | None:
        value = spec.options.get("frontends")
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if (
            not isinstance(value, list | tuple)
            or not value
            or not all(isinstance(v, str) and v and v.split() == [v] for v in value)
        ):
            raise opt.fail(spec, "option 'frontends' must be a name or a list of names")
        return tuple(str(v) for v in value)

    def _config(self, spec: QuiesceSpec, path: str) -> HaproxyConfig:
        try:
            return read_config(path)
        except ConfigError as exc:
            raise opt.fail(spec, str(exc)) from None

    def _method(self, spec: QuiesceSpec, target: Target, version: str) -> str:
        method = opt.choice(spec, "method", METHODS, "auto")
        broken = deadlocks(version, opt.optional_string(spec, "allow_version"))
        if method == "frontend" and broken:
            raise opt.fail(
                spec,
                f"HAProxy {version or '(version unknown)'} at {target.socket} deadlocks when "
                "a frontend's maxconn is restored while connections wait (haproxy issue 2726)",
                hint="use method global (or auto), upgrade HAProxy, or set "
                f"allow_version: {version!r} if this build carries the fix",
            )
        if method == "global" or (method == "auto" and broken):
            if target.pin is None:
                raise opt.fail(
                    spec,
                    f"method global needs an address of frontend {target.frontends[0]} "
                    "to hold a connection on",
                    hint="give the option 'pin' (host:port), or a 'conffile' with its 'bind'",
                )
            return "global"
        return "frontend"

    def _previous(self, spec: QuiesceSpec, target: Target, method: str) -> dict[str, int]:
        """The ``maxconn`` values a hold changes (by frontend, or ``global``), refused if held."""
        if method == "frontend":
            stats = self._stats(spec, target)
            for name in target.frontends:
                if stats[name].limit == 0:
                    raise opt.fail(
                        spec,
                        f"frontend {name} at {target.socket} already has maxconn 0 "
                        "(held by someone else?): refusing to hold it",
                    )
            return {name: stats[name].limit for name in target.frontends}
        limit = self._global_limit(spec, target)
        if limit <= 1:
            raise opt.fail(
                spec,
                f"HAProxy at {target.socket} already has a global maxconn of {limit} "
                "(held by someone else?): refusing to hold it",
            )
        return {"global": limit}

    def _info(self, spec: QuiesceSpec, target: Target) -> dict[str, str]:
        try:
            return api.info(target.socket, spec.timeout_seconds)
        except api.RuntimeApiError as exc:
            raise opt.fail(spec, str(exc)) from None

    def _global_limit(self, spec: QuiesceSpec, target: Target) -> int:
        value = self._info(spec, target).get("Maxconn", "")
        if not value.isdigit():
            raise opt.fail(spec, f"HAProxy at {target.socket} reports no global Maxconn")
        return int(value)

    def _stats(self, spec: QuiesceSpec, target: Target) -> dict[str, api.Frontend]:
        try:
            found = api.frontends(target.socket, spec.timeout_seconds)
        except api.RuntimeApiError as exc:
            raise opt.fail(spec, str(exc)) from None
        for name in target.frontends:
            if name not in found:
                known = ", ".join(sorted(found)) or "none"
                raise opt.fail(
                    spec, f"HAProxy at {target.socket} has no frontend {name} (it has: {known})"
                )
        return found

    def _accepted(self, stats: dict[str, api.Frontend], target: Target) -> int:
        return sum(stats[name].total for name in target.frontends)

    def _set(self, spec: QuiesceSpec, target: Target, name: str, value: int) -> None:
        try:
            api.set_maxconn(target.socket, name, value, spec.timeout_seconds)
        except api.RuntimeApiError as exc:
            raise opt.fail(spec, f"frontend {name}: {exc}") from None
        now = self._stats(spec, target)[name].limit
        if now != value:
            raise opt.fail(
                spec, f"frontend {name} at {target.socket} reads back maxconn {now}, not {value}"
            )

    def _set_global(self, spec: QuiesceSpec, target: Target, value: int) -> None:
        try:
            api.set_maxconn_global(target.socket, value, spec.timeout_seconds)
        except api.RuntimeApiError as exc:
            raise opt.fail(spec, str(exc)) from None
        now = self._global_limit(spec, target)
        if now != value:
            raise opt.fail(
                spec, f"HAProxy at {target.socket} reads back global maxconn {now}, not {value}"
            )

    def _pin(self, spec: QuiesceSpec, target: Target, deadline: float) -> sockets.socket:
        """A connection of our own to a held frontend, accepted by HAProxy before it returns."""
        assert target.pin is not None
        _, address = api.split_address(target.pin)
        before = self._accepted(self._stats(spec, target), target)
        try:
            pin = sockets.create_connection(address, timeout=spec.timeout_seconds)  # type: ignore[arg-type]
        except OSError as exc:
            raise opt.fail(
                spec, f"cannot connect to frontend {target.frontends[0]} at {target.pin}: {exc}"
            ) from None
        while self._accepted(self._stats(spec, target), target) <= before:
            if time.monotonic() >= deadline:
                pin.close()
                raise opt.fail(spec, f"HAProxy did not accept a connection at {target.pin} in time")
            time.sleep(_POLL)
        return pin

    def _drain(self, spec: QuiesceSpec, state: _Held, deadline: float) -> float:
        """Wait until the held frontends have no connection open but the pin; seconds waited."""
        target = state.target
        own = 1 if state.pin is not None else 0
        started = time.monotonic()
        while True:
            stats = self._stats(spec, target)
            busy = {n: stats[n].sessions for n in target.frontends}
            if sum(busy.values()) <= own:
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                said = ", ".join(f"{n} has {c}" for n, c in busy.items() if c)
                raise opt.fail(
                    spec,
                    f"connections still open at {target.socket} after "
                    f"{spec.timeout_seconds:g}s ({said}); they could pass requests while held",
                    hint="close idle client connections sooner: 'option http-server-close' "
                    "with a short 'timeout http-keep-alive', or 'option httpclose'",
                )
            time.sleep(_POLL)


def _values(values: dict[str, int]) -> str:
    return ",".join(f"{name}={value}" for name, value in values.items())
