"""The quiescer registry: built-ins listed here, plug-ins by entry point.

A third-party quiescer is an object following
:class:`~haprotect.quiesce.base.Quiescer`, exposed by a factory in the
``haprotect.quiescers`` entry point group::

    [project.entry-points."haprotect.quiescers"]
    my-queue = "mypkg.quiesce:MyQueueQuiescer"

A spec names its quiescer (``kind``): ``quiescers.get(spec.kind)``.
Importing this module imports no quiescer.
"""

from __future__ import annotations

from haprotect.quiesce.base import Quiescer, QuiesceSpec
from haprotect.registry import Builtin, Registry

quiescers: Registry[Quiescer, QuiesceSpec] = Registry(
    "quiescer",
    "haprotect.quiescers",
    (
        Builtin("http-gate", "haprotect.quiesce.http_gate:HttpGateQuiescer"),
        Builtin("app-flush", "haprotect.quiesce.app_flush:AppFlushQuiescer"),
        Builtin("postgresql", "haprotect.quiesce.postgres:PostgresQuiescer"),
        Builtin("command", "haprotect.quiesce.command:CommandQuiescer"),
        Builtin("fsfreeze", "haprotect.quiesce.fsfreeze:FsFreezeQuiescer"),
        Builtin("cluster", "haprotect.quiesce.cluster:ClusterQuiescer"),
        Builtin("haproxy", "haprotect.quiesce.haproxy:HaproxyQuiescer"),
    ),
)


def builtin_quiescers() -> Registry[Quiescer, QuiesceSpec]:
    """The registry (:data:`quiescers`): built-ins and plug-ins alike."""
    return quiescers


def quiescer_for(kind: str) -> Quiescer:
    """The quiescer registered as ``kind`` (RegistryError naming the known ones if none)."""
    return quiescers.get(kind)
