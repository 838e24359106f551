"""``haprotect serve``: the service's loop and its API (and web console) in one process.

The loop (:class:`~haprotect.service.daemon.Service`) runs in a thread of
its own; uvicorn serves the API in the main thread and turns SIGTERM and
SIGINT into a graceful stop, after which the loop stops its runs (their
tiers resume) and waits for them. Notifications are sent from the
dispatcher's own thread.
"""

from __future__ import annotations

import logging
import threading

from haprotect.api.app import create_app
from haprotect.api.console.session import KEY_FILE, load_key
from haprotect.api.daemon_control import DaemonControl
from haprotect.api.state import ApiSettings, ConsoleSettings
from haprotect.catalog import Catalog
from haprotect.service.config import ServiceConfig
from haprotect.service.daemon import Service
from haprotect.service.notify.dispatch import start_dispatcher

log = logging.getLogger("haprotect.service")


def serve(config: ServiceConfig, *, listen: str | None = None) -> None:
    """Run the service until SIGTERM or SIGINT."""
    import uvicorn

    _log_to_stderr(config.log_level)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    host, _, port = (listen or config.listen).rpartition(":")
    dispatcher = start_dispatcher(config.notifications)
    with Catalog.open(config.catalog_url) as catalog:
        service = Service(config, catalog, notify=dispatcher.notify)
        console = ConsoleSettings(key=load_key(config.state_dir / KEY_FILE))
        settings = ApiSettings(metrics_open=config.metrics_open, console=console)
        app = create_app(catalog, DaemonControl(service), settings)
        stop = threading.Event()
        loop = threading.Thread(target=service.serve, args=(stop,), name="scheduler")
        loop.start()
        tls = config.tls
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host.strip("[]"),
                port=int(port),
                log_level=config.log_level,
                ssl_certfile=str(tls.cert) if tls else None,
                ssl_keyfile=str(tls.key) if tls else None,
                access_log=False,
            )
        )
        log.info(
            "haprotect serve: state in %s, API on %s", config.state_dir, listen or config.listen
        )
        try:
            server.run()
        finally:
            stop.set()
            loop.join()
            dispatcher.close()


def _log_to_stderr(level: str) -> None:
    """The service's log: time, level and message, with the traceback of an unexpected error.

    The command line's own handler on ``haprotect`` prints warnings as one
    line without their cause, right for a command, not for a service read
    in a journal; the service's logger gets its own and stops there.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    service = logging.getLogger("haprotect.service")
    service.addHandler(handler)
    service.setLevel(level.upper())
    service.propagate = False
