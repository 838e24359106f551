"""The cut of a PostgreSQL data set: the primary's WAL position, and a standby paused there.

While the tiers are held, the primary's WAL insert position
(``pg_current_wal_insert_lsn()``, past every commit it acknowledged) is
recorded as the **cut LSN**, and the standby the copy will be read from
(chosen before the hold: ``cut_needs_source``) has its replay paused once it
has replayed up to it (:mod:`haprotect.movers.pgreplay`). The base backup is
then read from the paused standby, which resumes replay as soon as it is
done. The copy's end position must lie between the cut LSN and the pause
LSN: then a restore (whose WAL ends at the backup's end) holds exactly what
was committed before the cut. A copy that ends before the cut misses writes
(:meth:`PostgresCut.misses`); one that ends after the pause (the standby
could not be paused, or its pause ended early) holds writes made after the
cut, and says so (:meth:`PostgresCut.exceeds`). A cut without a pause waits,
before its copy, for the standby to replay past the cut LSN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from haprotect.errors import HaprotectError
from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem
from haprotect.model.snapshot import JSONValue
from haprotect.movers import pgcheck, pgreplay
from haprotect.movers.cut import CutHandle, CutRequest

#: How long a copy may take once the standby is asked to replay past the cut LSN.
CATCH_UP_SECONDS = 30.0


@dataclass(eq=False)
class PostgresCut(CutHandle):
    """The cut LSN, and the standby paused at it if one was."""

    lsn: str = ""
    item: PlanItem | None = None
    inventory: Inventory | None = None
    primary: str | None = None
    pause: pgreplay.ReplayPause | None = None

    @property
    def paused_at(self) -> str | None:
        return self.pause.lsn if self.pause is not None else None

    @property
    def released(self) -> bool:
        return self.pause is None or self.pause.resumed

    def before_copy(self, node: str) -> str | None:
        """Let a standby not paused at the cut replay past it; a note if it did not."""
        if self.pause is not None or node == self.primary:
            return None
        if self.item is None or self.inventory is None:
            return None
        endpoint = pgcheck.Endpoint.of_item(self.inventory, self.item, node)
        try:
            done, replayed = pgcheck.catch_up(endpoint, self.lsn, CATCH_UP_SECONDS)
        except HaprotectError as exc:
            return f"cannot follow {node}'s replay: {exc}"
        if done:
            return None
        return (
            f"{node} did not replay up to the cut {self.lsn} in {CATCH_UP_SECONDS:.0f}s "
            f"(at {replayed})"
        )

    def extend(self) -> None:
        if self.pause is not None:
            self.pause.extend()

    def misses(self, details: Mapping[str, JSONValue]) -> str | None:
        end = details.get("end_lsn")
        if not isinstance(end, str) or not _after(self.lsn, end):
            return None
        return f"the copy ends at WAL {end}, before the cut at {self.lsn}: it misses writes"

    def exceeds(self, details: Mapping[str, JSONValue]) -> str | None:
        """None when the copy is exactly the cut, or was taken without a pause.

        A copy without a pause (the standby could not be paused, or the copy
        was read from the primary) is not checked: its cut's warning, if
        any, already said so.
        """
        end = details.get("end_lsn")
        paused_at = self.paused_at
        if paused_at is None or not isinstance(end, str) or not _after(end, paused_at):
            return None
        return (
            f"the copy ends at WAL {end}, after the replay pause at {paused_at} (did the "
            "pause end early?): it also holds what was written after the cut"
        )

    def release(self) -> str | None:
        return self.pause.resume() if self.pause is not None else None

    def release_note(self) -> str | None:
        return None if self.pause is None else f"{self.pause.endpoint.node} replays again"


def take(request: CutRequest) -> PostgresCut | None:
    """Record the cut LSN and pause the chosen standby there; None without a primary."""
    item, inventory, node = request.item, request.inventory, request.node
    endpoint = primary_endpoint(inventory, item)
    if endpoint is None:
        return None
    lsn = pgcheck.primary_lsn(endpoint, insert=True)
    details: dict[str, JSONValue] = {"cut_lsn": lsn, "at": _now(), "primary": endpoint.node}
    cut = PostgresCut(details, lsn=lsn, item=item, inventory=inventory, primary=endpoint.node)
    if node is None:
        return cut
    if node == endpoint.node:
        cut.warning = (
            f"its copy is read from the primary {node}, which does not stand still at the "
            "cut: it will also hold what was written after the cut"
        )
        return cut
    standby = pgcheck.Endpoint.of_item(inventory, item, node)
    try:
        pause = pgreplay.pause_at(standby, lsn, primary=endpoint)
    except HaprotectError as exc:
        cut.warning = (
            f"the replay of {node} was not paused at the cut ({exc.message}); its copy "
            "will also hold what was written after the cut"
        )
        return cut
    details.update(
        {
            "paused": node,
            "pause_lsn": pause.lsn,
            "pause_waited_seconds": round(pause.waited_seconds, 3),
        }
    )
    cut.pause = pause
    return cut


def primary_endpoint(inventory: Inventory, item: PlanItem) -> pgcheck.Endpoint | None:
    node = item.source.primary or item.source.node
    return None if node is None else pgcheck.Endpoint.of_item(inventory, item, node)


def primary_dsn(inventory: Inventory, item: PlanItem) -> str | None:
    """A libpq DSN for the item's primary, for a ``postgresql`` quiescer of its tier."""
    endpoint = primary_endpoint(inventory, item)
    if endpoint is None:
        return None
    return (
        f"host={endpoint.host} port={endpoint.port} user={endpoint.user} "
        f"dbname={endpoint.dbname} application_name=haprotect-quiesce"
    )


def _after(first: str, second: str) -> bool:
    """Whether WAL position ``first`` lies after ``second`` (False when one is no LSN)."""
    try:
        return pgcheck.lsn_int(first) > pgcheck.lsn_int(second)
    except ValueError:
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat()
