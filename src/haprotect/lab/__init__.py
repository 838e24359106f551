"""A real, local, multi-tier HA lab: the demo's cluster and the integration tests'.

Terms:

- **lab**: one directory (``haprotect lab up --dir DIR``) holding everything
  below, its state file ``lab.json``, pid files, logs and sockets. All
  servers listen on 127.0.0.1 only, on ports chosen free at the first ``up``.
- **node**: ``node1`` and ``node2``, two PostgreSQL servers (data directory
  ``<lab>/nodeN/pgdata`` and a port each) standing for two cluster nodes.
  One is the **primary**, the other a hot **standby** fed by streaming
  replication through a replication slot.
- **database tier**: those two servers, database ``shop``, table ``orders``.
- **application tier**: an orders API (:mod:`haprotect.lab.app`) that
  acknowledges orders into an in-memory write-behind buffer and flushes it to
  the current primary.
- **web tier**: a front end (:mod:`haprotect.lab.web`) that serves a page,
  forwards ``/api/*`` to the application and stores uploads in
  ``<lab>/shared/uploads``, which stands for the cluster's shared filesystem.
- **CIB**: ``<lab>/cib.xml``, the lab described as a Pacemaker cluster
  (:mod:`haprotect.lab.cib`), kept true across failovers.
- **journal**: ``<lab>/journal.jsonl``, every request the lab acknowledged
  to the load generator, which :func:`verify_acknowledged` checks.

Importing this package starts nothing.
"""

from __future__ import annotations

from haprotect.lab.journal import JournalEntry, read_journal
from haprotect.lab.lab import Lab
from haprotect.lab.load import LabLoad, LoadReport
from haprotect.lab.report import LabEvent, LabStatus, NodeStatus, TierStatus
from haprotect.lab.verify import VerifyReport, verify_acknowledged

__all__ = [
    "JournalEntry",
    "Lab",
    "LabEvent",
    "LabLoad",
    "LabStatus",
    "LoadReport",
    "NodeStatus",
    "TierStatus",
    "VerifyReport",
    "read_journal",
    "verify_acknowledged",
]
