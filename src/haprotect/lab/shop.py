"""The shop's data: the ``orders`` table and the canonical form of an order.

An order is a JSON object with an ``id``, an ``item`` and a ``quantity``
(other fields are kept as they are). Its canonical form (sorted keys, no
spaces) is what the application tier stores in ``orders.payload`` and what
the load generator hashes into the journal, so a row can be checked against
what was acknowledged byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS orders (
    id          text PRIMARY KEY,
    item        text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    payload     text NOT NULL,
    received_at timestamptz NOT NULL,
    flushed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS orders_received_at ON orders (received_at);
"""

INSERT_SQL = (
    "INSERT INTO orders (id, item, quantity, payload, received_at) "
    "VALUES (%s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT (id) DO NOTHING"
)


class OrderError(ValueError):
    """An order that is not a JSON object with an item and a positive quantity."""


def canonical(order: Mapping[str, Any]) -> str:
    return json.dumps(order, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def validate_order(order: object) -> dict[str, Any]:
    """The order, checked; raises OrderError with a one-line reason."""
    if not isinstance(order, dict):
        raise OrderError("an order is a JSON object")
    item, quantity, order_id = order.get("item"), order.get("quantity"), order.get("id")
    if not isinstance(item, str) or not item:
        raise OrderError("'item' must be a non-empty string")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise OrderError("'quantity' must be a positive integer")
    if not isinstance(order_id, str) or not 0 < len(order_id) <= 64:
        raise OrderError("'id' must be a string of 1 to 64 characters")
    return order
