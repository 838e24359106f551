"""The inventory file: how to reach each node and where its data is (docs/engine.md).

```yaml
apiVersion: haprotect/v1      # optional
kind: Inventory               # optional
nodes:
  node1:
    host: 10.0.0.1            # default: the node's name
    local: false              # default: true for a loopback host or this machine's name
    locations:                # per data set (id, or cluster/id): parameters that differ
      pgsql_shop: {pgport: 5433, pgdata: /srv/pg/node1}
quiesce:                      # per group tier (group/tier, or cluster/group/tier): quiescers
  shop/frontend:              # added to the policy's (same fields as a policy tier's quiesce)
  - {kind: http-gate, options: {admin_url: "http://127.0.0.1:8079"}}
```

Validated with pydantic through :mod:`haprotect.yamlsource`, so every error
names the file, line and field. Numbers and booleans in ``locations`` are
taken as the strings a cluster configuration would hold (``pgport: 5433`` is
``"5433"``), and credentials in them are redacted as a source's are
(:mod:`haprotect.redact`): a plan shows its locations.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from haprotect.errors import InputError
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.policy.document import quiescer_from
from haprotect.policy.schema import QuiescerDoc
from haprotect.redact import redact_value
from haprotect.yamlsource import YamlDocument, parse_yaml, read_yaml

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})

Name = Annotated[StrictStr, Field(min_length=1)]
Value = StrictStr | StrictInt | StrictFloat | StrictBool


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class NodeDoc(_Strict):
    """One node of the inventory file; every key is optional (defaults: the module docstring)."""

    host: Name | None = None
    local: StrictBool | None = None
    locations: dict[Name, dict[Name, Value]] = Field(default_factory=dict)


class InventoryDoc(_Strict):
    """The inventory file, validated as it is read, before it becomes an :class:`Inventory`."""

    apiVersion: Literal["haprotect/v1"] = "haprotect/v1"
    kind: Literal["Inventory"] = "Inventory"
    nodes: dict[Name, NodeDoc | None] = Field(default_factory=dict)
    quiesce: dict[Name, list[QuiescerDoc]] = Field(default_factory=dict)


def this_host() -> str:
    return socket.gethostname()


def default_inventory() -> Inventory:
    """No file: nodes are reached by name, local only when named as this machine."""
    return Inventory(this_host=this_host())


def load_inventory(path: Path | None) -> Inventory:
    """The inventory in ``path``, or the default one when ``path`` is None."""
    if path is None:
        return default_inventory()
    return inventory_from_document(read_yaml(path, error=InputError))


def parse_inventory(text: str, origin: str) -> Inventory:
    return inventory_from_document(parse_yaml(text, origin, error=InputError))


def inventory_from_document(doc: YamlDocument) -> Inventory:
    if doc.data is not None and not isinstance(doc.data, dict):
        raise doc.error_at((), "expected a mapping with nodes")
    validated = doc.validate(InventoryDoc)
    here = this_host()
    nodes = []
    for name, given in validated.nodes.items():
        node = given or NodeDoc()
        host = node.host or name
        local = node.local if node.local is not None else (host in LOOPBACK or name == here)
        locations = {
            dataset: {key: redact_value(key, _text(value)) for key, value in overrides.items()}
            for dataset, overrides in node.locations.items()
        }
        nodes.append(NodeAccess(name, host, local, locations))
    quiesce = {
        tier: tuple(quiescer_from(q) for q in specs) for tier, specs in validated.quiesce.items()
    }
    return Inventory(tuple(nodes), this_host=here, origin=doc.origin, quiesce=quiesce)


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
