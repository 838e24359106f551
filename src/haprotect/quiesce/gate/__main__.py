"""``python -m haprotect.quiesce.gate``: run an HTTP gate in front of a web tier.

::

    python -m haprotect.quiesce.gate --listen 0.0.0.0:80 --upstream 127.0.0.1:8080 \\
        --admin 127.0.0.1:8079 [--token-file FILE] [--max-queue 1000] [--max-wait 30] \\
        [--retry-after 2] [--max-body BYTES] [--upstream-timeout 60]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from haprotect.quiesce.gate.core import GateLimits
from haprotect.quiesce.gate.proxy import Upstream
from haprotect.quiesce.gate.server import GateConfig, serve


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m haprotect.quiesce.gate",
        description="An HTTP gate: holds and replays requests while a backup takes its cut.",
    )
    p.add_argument("--listen", type=address, required=True, help="public HOST:PORT")
    p.add_argument("--upstream", type=address, required=True, help="the web tier's HOST:PORT")
    p.add_argument("--admin", type=address, required=True, help="admin API HOST:PORT (loopback)")
    p.add_argument("--token-file", type=Path, help="a file holding the admin API's bearer token")
    p.add_argument("--max-queue", type=int, default=1000, help="requests that may wait")
    p.add_argument("--max-wait", type=float, default=30.0, help="seconds a request may wait")
    p.add_argument("--retry-after", type=int, default=2, help="Retry-After of a 503, seconds")
    p.add_argument("--max-body", type=int, default=64 * 1024 * 1024, help="request body limit")
    p.add_argument("--upstream-timeout", type=float, default=60.0, help="seconds to answer")
    return p


def config_from(args: argparse.Namespace) -> GateConfig:
    token = args.token_file.read_text().strip() if args.token_file else None
    return GateConfig(
        listen=args.listen,
        admin=args.admin,
        upstream=Upstream(args.upstream[0], args.upstream[1], read_timeout=args.upstream_timeout),
        limits=GateLimits(args.max_queue, args.max_wait, args.retry_after),
        max_body=args.max_body,
        token=token or None,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = config_from(args)
    except OSError as exc:
        parser().error(f"cannot read the token file: {exc}")
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
