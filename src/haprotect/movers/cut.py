"""The cut step of the mover contract: a point-in-time source, made while the tiers are held.

When a set's tiers have quiescers, the engine holds them top-down and asks
each item's mover for a cut (``Mover.prepare_cut``) before it resumes them.
What a mover makes of it depends on its kind of data (the files mover copies
the directory with reflinks, the PostgreSQL mover pauses the standby's
replay at the primary's WAL position); the engine only sees the
:class:`CutHandle` it returns:

- ``location(...)``: what the copy reads from (the location, with the cut's
  copy in place of the live directory);
- ``details``: what the set's metadata records of the cut (its method, a
  WAL position, when it was taken);
- ``paused_at``: where the source stands still until ``release()``, if it
  does (the engine then copies that item first and lets it go at once);
- ``before_copy``, ``extend``, ``misses``, ``exceeds``: the checks around
  the copy (a source still catching up to the cut; a copy that ends before
  the cut or after the pause);
- ``release()``: let the source go on, idempotent; ``discard()``: remove
  what the cut wrote outside the run's staging directory.

The base class is a cut with nothing held and nothing to check: a mover
whose data needs only part of it subclasses it and overrides that part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from haprotect.model.inventory import Inventory
from haprotect.model.plan import PlanItem
from haprotect.model.snapshot import JSONValue


@dataclass(frozen=True, slots=True)
class CutRequest:
    """One item to cut while its set's tiers are held.

    ``root``: a directory of the run's own for what the cut writes (removed
    with the run's staging); ``cut_name``: the name to write under in a
    directory outside it (a location's ``cut_dir``); ``node``: the source
    chosen before the hold, for a mover whose ``cut_needs_source`` says so;
    ``frozen``: devices a quiescer of the set froze, never to be written to.
    """

    item: PlanItem
    inventory: Inventory
    root: Path
    cut_name: str
    node: str | None = None
    frozen: frozenset[int] = frozenset()


@dataclass(eq=False)
class CutHandle:
    """What a mover's cut made of one item: what the copy reads from, and how to let go.

    ``replaces``: location parameters the copy reads instead of the live
    ones (a directory's point-in-time copy); ``warning``: the cut was taken,
    but not as well as it should be (the run warns with it).
    """

    details: dict[str, JSONValue] = field(default_factory=dict)
    replaces: Mapping[str, str] = field(default_factory=dict)
    warning: str | None = None

    @property
    def paused_at(self) -> str | None:
        """Where the copy's source stands still until :meth:`release`, if it does."""
        return None

    @property
    def released(self) -> bool:
        """Whether the source has been let go (always, when nothing was held)."""
        return True

    def location(self, location: Mapping[str, str]) -> dict[str, str]:
        """The location to copy from: the live one with the cut's replacements."""
        return {**location, **self.replaces}

    def before_copy(self, node: str) -> str | None:
        """Make ``node`` ready to be copied from; a note when it is not quite."""
        return None

    def extend(self) -> None:
        """The copy starts now: renew what holds the source (raises HaprotectError)."""
        return None

    def misses(self, details: Mapping[str, JSONValue]) -> str | None:
        """Why the copy (the mover's ``details``) misses part of the cut, if it does."""
        return None

    def exceeds(self, details: Mapping[str, JSONValue]) -> str | None:
        """Why the copy holds more than the cut, if it does (a warning)."""
        return None

    def release(self) -> str | None:
        """Let the source go on; a problem, or None. Idempotent."""
        return None

    def release_note(self) -> str | None:
        """What to tell once :meth:`release` let a held source go on."""
        return None

    def discard(self) -> str | None:
        """Remove what the cut wrote outside the run's staging; what stayed, or None."""
        return None
