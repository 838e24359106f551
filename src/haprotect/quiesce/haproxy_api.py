"""HAProxy's runtime API (the ``stats socket``), spoken with the standard library only.

One command per connection: the command and a newline are sent, the answer
is read until HAProxy closes the connection, each step under a timeout. The
address is a unix socket path or ``host:port`` (``ipv4@`` and ``unix@``
prefixes, as in HAProxy's configuration, are accepted).

The module is also run by path, as the release command of a lease keeper
(``python -I -B haproxy_api.py ADDRESS set-maxconn FRONTEND VALUE ...``, or
``set-maxconn-global VALUE``), so it imports nothing outside the standard
library: the keeper restores the ``maxconn`` values when haprotect is gone.
"""

from __future__ import annotations

import csv
import io
import socket
import sys
from dataclasses import dataclass

_CHUNK = 65536
_MAX_ANSWER = 16 * 1024 * 1024


class RuntimeApiError(Exception):
    """The runtime API could not be reached, or refused a command (one line)."""


@dataclass(frozen=True, slots=True)
class Frontend:
    """A frontend's line of ``show stat``: its current sessions and limit, its status."""

    name: str
    sessions: int  #: scur: connections open now
    limit: int  #: slim: the frontend's maxconn
    total: int  #: stot: connections accepted since start
    status: str


def split_address(address: str) -> tuple[int, str | tuple[str, int]]:
    """The socket family and address of ``/path``, ``unix@/path``, ``host:port``, ``ipv4@h:p``."""
    if address.startswith("unix@"):
        return socket.AF_UNIX, address.removeprefix("unix@")
    if address.startswith("/"):
        return socket.AF_UNIX, address
    address = address.removeprefix("ipv4@").removeprefix("tcp@")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RuntimeApiError(f"{address!r} is neither a socket path nor host:port")
    return socket.AF_INET, (host, int(port))


def command(address: str, line: str, timeout: float) -> str:
    """Send one command to the runtime API at ``address``; its whole answer."""
    family, target = split_address(address)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(target)
            conn.sendall(line.encode() + b"\n")
            chunks: list[bytes] = []
            size = 0
            while size < _MAX_ANSWER:
                chunk = conn.recv(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except TimeoutError:
        raise RuntimeApiError(
            f"HAProxy's runtime API at {address}: no answer to {line!r} within {timeout:g}s"
        ) from None
    except OSError as exc:
        raise RuntimeApiError(
            f"cannot reach HAProxy's runtime API at {address}: {exc.strerror or exc}"
        ) from None
    return b"".join(chunks).decode("utf-8", "replace")


def run(address: str, line: str, timeout: float) -> None:
    """A command that answers nothing on success; anything it says is its error."""
    answer = command(address, line, timeout).strip()
    if answer:
        raise RuntimeApiError(f"HAProxy at {address} refused {line!r}: {answer.splitlines()[0]}")


def frontends(address: str, timeout: float) -> dict[str, Frontend]:
    """Every frontend (and ``listen`` section) of ``show stat``, by name."""
    answer = command(address, "show stat", timeout)
    text = answer.lstrip("# ")
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows and answer.strip():
        raise RuntimeApiError(f"HAProxy at {address}: unexpected answer to 'show stat'")
    found: dict[str, Frontend] = {}
    for row in rows:
        if row.get("svname") != "FRONTEND":
            continue
        found[row["pxname"]] = Frontend(
            row["pxname"],
            _int(row.get("scur")),
            _int(row.get("slim")),
            _int(row.get("stot")),
            row.get("status") or "",
        )
    return found


def info(address: str, timeout: float) -> dict[str, str]:
    """``show info`` as a mapping (``Version``, ``Nbthread``, ``Maxconn``, ...)."""
    found: dict[str, str] = {}
    for line in command(address, "show info", timeout).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found[key.strip()] = value.strip()
    return found


def set_maxconn(address: str, frontend: str, value: int, timeout: float) -> None:
    run(address, f"set maxconn frontend {frontend} {value}", timeout)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def set_maxconn_global(address: str, value: int, timeout: float) -> None:
    run(address, f"set maxconn global {value}", timeout)


def main(args: list[str]) -> int:
    """A lease keeper's release: ``ADDRESS set-maxconn FRONTEND VALUE [FRONTEND VALUE ...]``
    or ``ADDRESS set-maxconn-global VALUE``."""
    usage = "usage: haproxy_api.py ADDRESS set-maxconn FRONTEND VALUE ... | set-maxconn-global N\n"
    if len(args) == 3 and args[1] == "set-maxconn-global" and args[2].isdigit():
        steps = [("global", args[2])]
    elif len(args) >= 4 and not len(args) % 2 and args[1] == "set-maxconn":
        steps = list(zip(args[2::2], args[3::2], strict=True))
    else:
        sys.stderr.write(usage)
        return 2
    failed = 0
    for frontend, value in steps:
        try:
            if args[1] == "set-maxconn-global":
                set_maxconn_global(args[0], int(value), 10.0)
            else:
                set_maxconn(args[0], frontend, int(value), 10.0)
        except (RuntimeApiError, ValueError) as exc:
            sys.stderr.write(f"{exc}\n")
            failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
