"""``haprotect serve``: the protection service, enforcing the approved policies by itself."""

from __future__ import annotations

from typing import Annotated

import typer

from haprotect.cli.app import app, reports_errors
from haprotect.cli.status import ConfigOpt


@app.command("serve")
@reports_errors
def serve_command(
    config_file: ConfigOpt = None,
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT the API listens on (default: the configuration's listen)."),
    ] = None,
) -> None:
    """Run the protection service: schedules, retention, copies, checks, drift, API.

    Every approved policy version runs by itself: each consistency group or
    item on its cron schedule (one catch-up run after downtime, retries with
    backoff, limits per repository and node), each complete set copied to
    the copy targets and thinned by the policy's retention, the repositories
    pruned and read back in rotating parts, the cluster read again for
    drift. The REST API, server-sent events and /metrics are served on
    --listen. Runs are child `haprotect` processes: SIGTERM stops them
    (their tiers resume) before the service exits. See docs/service.md.

    Exit status: 0 stopped, 2 bad usage, 3 unreadable input, 4 component failed,
    5 plug-in missing.
    """
    from haprotect.service.config import load_config

    config = load_config(config_file)
    try:
        from haprotect.api.serving import serve
    except ImportError as exc:
        from haprotect.errors import RegistryError

        raise RegistryError(
            f"haprotect serve needs the server extra ({exc.name} is not installed)",
            hint="pip install 'haprotect[server]'",
        ) from None
    serve(config, listen=listen)
