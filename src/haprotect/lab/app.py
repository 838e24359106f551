"""The lab's application tier: an orders API with a write-behind buffer.

``POST /orders`` acknowledges an order once it is in the in-memory buffer; a
background thread writes the buffer to the PostgreSQL primary every
``flush_interval`` seconds, and ``POST /admin/flush`` writes it at once and
says how many rows it wrote. Until then an acknowledged order exists only in
this process's memory: that is the state a backup must flush to the next
tier first. ``GET /orders`` lists orders from the database and says how many
are still buffered; ``GET /health`` reports the tier.

The primary is looked up in the lab's state file at every (re)connection,
and the connection insists on a read-write server, so after a failover the
next flush reaches the new primary; orders stay buffered until it does.

Run as ``python -m haprotect.lab.app --lab DIR``; its port is in the state.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

import psycopg

from haprotect.lab.serving import JsonHandler, lab_dir_argument, log, serve
from haprotect.lab.shop import INSERT_SQL, OrderError, canonical, sha256_text, validate_order
from haprotect.lab.state import load_state

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BufferedOrder:
    """An acknowledged order still in the buffer, not yet in the database."""

    id: str
    item: str
    quantity: int
    payload: str
    received_at: float


class DatabaseUnavailable(Exception):
    """The primary cannot be reached, or its connection is busy: the request gets a 503."""


class OrderStore:
    """The buffer and the connection to the current primary."""

    def __init__(self, lab_dir: Path) -> None:
        self.lab_dir = lab_dir
        self._buffer: list[BufferedOrder] = []
        self._buffer_lock = threading.Lock()
        self._db_lock = threading.Lock()  #: one flush or query at a time on the connection
        self._conn: psycopg.Connection[Any] | None = None
        self.node: str | None = None
        self.flushed_total = 0
        self.last_error: str | None = None

    def add(self, order: dict[str, Any]) -> tuple[str, str, int]:
        """Buffer an order; (id, sha256 of its payload, orders now buffered)."""
        payload = canonical(order)
        entry = BufferedOrder(order["id"], order["item"], order["quantity"], payload, time.time())
        with self._buffer_lock:
            self._buffer.append(entry)
            return entry.id, sha256_text(payload), len(self._buffer)

    def buffered(self) -> int:
        with self._buffer_lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write every buffered order to the primary; the number written."""
        with self._db_lock:
            with self._buffer_lock:
                batch = list(self._buffer)
            if not batch:
                return 0
            rows = [(o.id, o.item, o.quantity, o.payload, o.received_at) for o in batch]

            def write(conn: psycopg.Connection[Any]) -> None:
                with conn.cursor() as cur:
                    cur.executemany(INSERT_SQL, rows)  # ON CONFLICT: a retry is harmless
                conn.commit()

            self._with_connection(write)
            with self._buffer_lock:
                # Only flush removes from the buffer, and only under _db_lock.
                del self._buffer[: len(batch)]
            self.flushed_total += len(batch)
            self.last_error = None
            return len(batch)

    def query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        if not self._db_lock.acquire(timeout=10):
            raise DatabaseUnavailable("the database connection is busy")
        try:

            def read(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
                rows = conn.execute(sql, params or None).fetchall()
                conn.commit()
                return rows

            return self._with_connection(read)
        finally:
            self._db_lock.release()

    def close(self) -> None:
        with self._db_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _with_connection(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` on the connection (``_db_lock`` held), once more on a fresh one
        if a connection made earlier turns out broken (its server went away)."""
        reused = self._conn is not None
        conn = self._connection()
        try:
            return work(conn)
        except psycopg.OperationalError as exc:
            self._drop(exc)
            if not reused:
                raise DatabaseUnavailable(self.last_error) from None
        except psycopg.Error as exc:
            self._drop(exc)
            raise DatabaseUnavailable(self.last_error) from None
        conn = self._connection()
        try:
            return work(conn)
        except psycopg.Error as exc:
            self._drop(exc)
            raise DatabaseUnavailable(self.last_error) from None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        state = load_state(self.lab_dir)
        if state is None:
            raise DatabaseUnavailable("the lab has no state file")
        node = state.primary_node
        dsn = node.dsn() + " target_session_attrs=read-write application_name=orders_app"
        try:
            self._conn = psycopg.connect(dsn, options="-c statement_timeout=15000")
        except psycopg.Error as exc:
            self._drop(exc)
            raise DatabaseUnavailable(self.last_error) from None
        if self.node != node.name:
            log.info("connected to the primary %s (port %d)", node.name, node.port)
        self.node = node.name
        return self._conn

    def _drop(self, exc: BaseException) -> None:
        message = str(exc).strip().splitlines()
        self.last_error = message[0] if message else type(exc).__name__
        log.warning("database: %s", self.last_error)
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class AppServer(ThreadingHTTPServer):
    """The application tier's HTTP server, sharing one :class:`OrderStore` between its threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: OrderStore) -> None:
        super().__init__(address, AppHandler)
        self.store = store


class AppHandler(JsonHandler):
    """The application tier's routes (see the module docstring)."""

    @property
    def store(self) -> OrderStore:
        return cast(AppServer, self.server).store

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            if url.path == "/health":
                self.send_json(200, self._health())
            elif url.path == "/orders":
                limit = int(parse_qs(url.query).get("limit", ["100"])[0])
                self.send_json(200, self._list(max(0, min(limit, 10_000))))
            elif url.path.startswith("/orders/"):
                self._one(url.path.removeprefix("/orders/"))
            else:
                self.send_json(404, {"error": f"no such path {url.path}"})
        except DatabaseUnavailable as exc:
            self.send_json(503, {"error": f"database unavailable: {exc}"})
        except ValueError as exc:
            self.send_json(400, {"error": str(exc)})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/orders":
            self._post_order()
        elif url.path == "/admin/flush":
            try:
                flushed = self.store.flush()
            except DatabaseUnavailable as exc:
                self.send_json(503, {"error": f"database unavailable: {exc}"})
                return
            self.send_json(200, {"flushed": flushed, "buffered": self.store.buffered()})
        else:
            self.send_json(404, {"error": f"no such path {url.path}"})

    def _post_order(self) -> None:
        try:
            order = self.read_json()
            if isinstance(order, dict) and "id" not in order:
                order["id"] = uuid.uuid4().hex
            order = validate_order(order)
        except (ValueError, OrderError) as exc:
            self.send_json(400, {"error": str(exc)})
            return
        order_id, digest, buffered = self.store.add(order)
        self.send_json(202, {"id": order_id, "sha256": digest, "buffered": buffered})

    def _health(self) -> dict[str, Any]:
        try:
            self.store.query("SELECT 1")
            database = "ok"
        except DatabaseUnavailable:
            database = "unavailable"
        return {
            "status": "ok" if database == "ok" else "degraded",
            "tier": "application",
            "database": database,
            "primary": self.store.node,
            "buffered": self.store.buffered(),
            "flushed_total": self.store.flushed_total,
            "last_error": self.store.last_error,
        }

    def _list(self, limit: int) -> dict[str, Any]:
        count = self.store.query("SELECT count(*) FROM orders")[0][0]
        rows = self.store.query(
            "SELECT id, item, quantity, received_at FROM orders "
            "ORDER BY received_at DESC, id LIMIT %s",
            limit,
        )
        orders = [
            {"id": r[0], "item": r[1], "quantity": r[2], "received_at": r[3].isoformat()}
            for r in rows
        ]
        return {"count": count, "buffered": self.store.buffered(), "orders": orders}

    def _one(self, order_id: str) -> None:
        rows = self.store.query("SELECT payload FROM orders WHERE id = %s", order_id)
        if rows:
            self.send_json(200, {"id": order_id, "stored": True, "payload": rows[0][0]})
        else:
            self.send_json(404, {"id": order_id, "stored": False})


def make_server(lab_dir: Path) -> AppServer:
    state = load_state(lab_dir)
    if state is None:
        raise SystemExit(f"{lab_dir}: no lab state file")
    return AppServer(("127.0.0.1", state.app_port), OrderStore(lab_dir))


def flush_loop(store: OrderStore, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        # A failure is logged; the orders stay buffered for the next round.
        with suppress(DatabaseUnavailable):
            store.flush()


def main() -> None:
    lab_dir = lab_dir_argument("The haprotect lab's application tier (orders API).")
    server = make_server(lab_dir)
    store = server.store
    state = load_state(lab_dir)
    interval = state.flush_interval if state else 2.0
    stop = threading.Event()
    flusher = threading.Thread(
        target=flush_loop, args=(store, interval, stop), name="flush", daemon=True
    )
    flusher.start()

    def on_stop() -> None:
        stop.set()
        flusher.join(timeout=interval + 5)
        try:
            flushed = store.flush()
            log.info("final flush wrote %d orders", flushed)
        except DatabaseUnavailable as exc:
            log.warning("final flush failed, %d orders lost: %s", store.buffered(), exc)
        store.close()

    serve(server, on_stop)


if __name__ == "__main__":
    main()
