"""Where groups and resources are online: ``hastatus -sum``, ``hagrp -state``, ``hares -state``.

One tolerant reader takes any of the three outputs, alone or one after the
other in one file (prompts, command lines and warnings in between are
skipped), so that a saved session can be read as it was captured:

* ``hastatus -sum``: the ``-- SYSTEM STATE`` section (``A  node01  RUNNING  0``),
  ``-- GROUP STATE`` (``B  grp  node01  Y  N  ONLINE``) and ``-- RESOURCES
  FAILED`` (``C  grp  Type  res  node01``);
* ``hagrp -state``: ``grp  State  node01  |ONLINE|`` (values between bars);
* ``hares -state``: ``res  State  node01  ONLINE``.

States keep VCS's words (``ONLINE``, ``OFFLINE|STATE UNKNOWN``, ``PARTIAL``,
``FAULTED``); :func:`is_online` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SECTION_WORDS = {
    "SYSTEM STATE": "systems",
    "GROUP STATE": "groups",
    "RESOURCES FAILED": "failed",
}


@dataclass(slots=True)
class VcsState:
    """The cluster's state, as far as the outputs read tell it."""

    #: system -> its state (RUNNING, EXITED, FAULTED, ...)
    systems: dict[str, str] = field(default_factory=dict)
    #: (group, system) -> state
    groups: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (resource, system) -> state
    resources: dict[tuple[str, str], str] = field(default_factory=dict)

    def merge(self, other: VcsState) -> None:
        self.systems.update(other.systems)
        self.groups.update(other.groups)
        self.resources.update(other.resources)

    @property
    def empty(self) -> bool:
        return not (self.systems or self.groups or self.resources)


def is_online(state: str | None) -> bool:
    """ONLINE, alone or with flags (``|ONLINE|``, ``ONLINE|STOPPING`` excluded)."""
    if state is None:
        return False
    words = {w.strip().upper() for w in state.split("|") if w.strip()}
    return "ONLINE" in words and not words & {"STOPPING", "FAULTED", "OFFLINE"}


def read_state(text: str) -> VcsState:
    """Every state the outputs in ``text`` tell (lines of no known shape are skipped)."""
    state = VcsState()
    section = ""
    state_of = ""  #: "group" or "resource", after a ``#Group``/``#Resource`` header
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("--"):
            heading = " ".join(line.lstrip("-").split())
            if heading in _SECTION_WORDS:
                section = _SECTION_WORDS[heading]
            elif heading.isupper():  # another section; column titles are capitalised words
                section = ""
            continue
        if line.startswith("#"):
            head = line[1:].split()
            state_of = head[0].lower() if head else ""
            continue
        fields = line.split()
        if len(fields) >= 3 and len(fields[0]) == 1 and fields[0].isalpha() and section:
            _summary_line(state, section, fields[1:])
        elif len(fields) >= 4 and fields[1] == "State":
            value = " ".join(fields[3:])
            if state_of == "group" or (state_of != "resource" and value.startswith("|")):
                state.groups[(fields[0], fields[2])] = value.strip("|")
            else:
                state.resources[(fields[0], fields[2])] = value
    return state


def _summary_line(state: VcsState, section: str, fields: list[str]) -> None:
    if section == "systems":
        state.systems[fields[0]] = fields[1]
    elif section == "groups" and len(fields) >= 5:
        state.groups[(fields[0], fields[1])] = " ".join(fields[4:])
    elif section == "failed" and len(fields) >= 4:
        state.resources[(fields[2], fields[3])] = "FAULTED"
