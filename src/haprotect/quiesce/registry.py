"""The quiescer registry: built-ins registered explicitly, plug-ins by entry point.

A third-party quiescer is an object following
:class:`~haprotect.quiesce.base.Quiescer`, exposed by a factory in the
``haprotect.quiescers`` entry point group::

    [project.entry-points."haprotect.quiescers"]
    my-queue = "mypkg.quiesce:MyQueueQuiescer"

Importing this module registers nothing; :func:`builtin_quiescers` does,
once.
"""

from __future__ import annotations

from functools import cache

from haprotect.quiesce.base import Quiescer
from haprotect.registry import Registry

quiescers: Registry[Quiescer] = Registry("quiescer", "haprotect.quiescers")


@cache
def builtin_quiescers() -> Registry[Quiescer]:
    """The registry, with the built-in quiescers in it."""
    from haprotect.quiesce.app_flush import AppFlushQuiescer
    from haprotect.quiesce.cluster import ClusterQuiescer
    from haprotect.quiesce.command import CommandQuiescer
    from haprotect.quiesce.fsfreeze import FsFreezeQuiescer
    from haprotect.quiesce.http_gate import HttpGateQuiescer
    from haprotect.quiesce.postgres import PostgresQuiescer

    builtins: tuple[Quiescer, ...] = (
        HttpGateQuiescer(),
        AppFlushQuiescer(),
        PostgresQuiescer(),
        CommandQuiescer(),
        FsFreezeQuiescer(),
        ClusterQuiescer(),
    )
    for quiescer in builtins:
        quiescers.register(quiescer.name, quiescer)
    return quiescers


def quiescer_for(kind: str) -> Quiescer:
    """The quiescer registered as ``kind`` (RegistryError naming the known ones if none)."""
    return builtin_quiescers().get(kind)
