"""Running VCS's own commands: ``hastatus -sum``, ``hagrp -state``, ``hares -state``.

The live source asks through a :class:`CommandRunner`; the default one runs
the installed commands (found on ``PATH`` or in ``/opt/VRTSvcs/bin``, where
VCS installs them), and tests hand in one that answers with saved outputs.
Every failure (command missing, timeout, non-zero exit, killed) is one
:class:`ComponentError` line naming the command and the first stderr line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Protocol

from haprotect.errors import ComponentError
from haprotect.sources.vcs.status import VcsState, read_state

VCS_BIN = "/opt/VRTSvcs/bin"
INSTALL_HINT = (
    "run on a cluster system with VCS installed, or read a saved main.cf with vcs+file://"
)
#: the commands whose outputs give the live state, in the order they are run
STATE_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("hastatus", "-sum"),
    ("hagrp", "-state"),
    ("hares", "-state"),
)


class CommandRunner(Protocol):
    """Runs one VCS command and returns its standard output."""

    def __call__(self, argv: Sequence[str], timeout: float) -> str: ...


def run_command(argv: Sequence[str], timeout: float) -> str:
    """The default :class:`CommandRunner`: the installed command, through subprocess."""
    tool = argv[0]
    exe = shutil.which(tool) or shutil.which(tool, path=VCS_BIN)
    if exe is None:
        raise ComponentError(f"{tool} is not installed", hint=INSTALL_HINT)
    shown = " ".join(argv)
    try:
        done = subprocess.run(
            [exe, *argv[1:]],
            capture_output=True,
            timeout=timeout,
            check=False,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired:
        raise ComponentError(f"{shown} timed out after {timeout:g}s") from None
    except OSError as exc:
        raise ComponentError(f"cannot run {shown}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.decode("utf-8", "replace").splitlines()]
        first = next((ln for ln in lines if ln), "")
        status = (
            f"was killed by signal {-done.returncode}"
            if done.returncode < 0
            else f"exited with status {done.returncode}"
        )
        raise ComponentError(f"{shown} {status}{': ' + first if first else ''}")
    return done.stdout.decode("utf-8", "replace")


def live_state(runner: CommandRunner, timeout: float) -> VcsState:
    """The running cluster's state, from every command of :data:`STATE_COMMANDS`."""
    state = VcsState()
    for argv in STATE_COMMANDS:
        state.merge(read_state(runner(list(argv), timeout)))
    return state
