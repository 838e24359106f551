"""fsfreeze's checks: what it refuses, in one line, before freezing anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.conftest import require_component

from haprotect.errors import QuiesceError
from haprotect.quiesce import QuiesceSpec
from haprotect.quiesce.fsfreeze import FsFreezeQuiescer, mount_fstype


@pytest.fixture
def as_root() -> None:
    """The other checks come after the root check."""
    require_component("root (fsfreeze's checks)", os.geteuid() == 0, "run the tests as root")


root_only = pytest.mark.usefixtures("as_root")


def spec(mountpoint: str) -> QuiesceSpec:
    return QuiesceSpec("fsfreeze", "storage", options={"mountpoint": mountpoint})


def test_a_relative_mountpoint_is_refused() -> None:
    with pytest.raises(QuiesceError, match="option 'mountpoint' must be an absolute path"):
        FsFreezeQuiescer().validate(spec("data"))


@root_only
def test_a_directory_that_is_not_a_mount_point(tmp_path: Path) -> None:
    with pytest.raises(QuiesceError) as caught:
        FsFreezeQuiescer().hold(spec(str(tmp_path)))
    assert str(caught.value) == f"fsfreeze: {tmp_path} is not a mount point"


@root_only
def test_the_root_filesystem_is_refused() -> None:
    with pytest.raises(QuiesceError, match=r"^fsfreeze: / holds /, which the thaw needs"):
        FsFreezeQuiescer().hold(spec("/"))


@root_only
def test_an_unsupported_filesystem_type_is_named() -> None:
    tmpfs = next(
        (
            p
            for p in ("/dev/shm", "/run", "/tmp")
            if os.path.ismount(p) and mount_fstype(p) == "tmpfs"
        ),
        None,
    )
    require_component("a tmpfs mount", tmpfs is not None, "mount one on /dev/shm, /run or /tmp")
    assert tmpfs is not None
    with pytest.raises(QuiesceError) as caught:
        FsFreezeQuiescer().hold(spec(tmpfs))
    assert str(caught.value) == f"fsfreeze: {tmpfs} is tmpfs, which cannot be frozen"


def test_a_user_other_than_root_is_told_it_needs_root() -> None:
    code = textwrap.dedent(
        """
        from haprotect.errors import QuiesceError
        from haprotect.quiesce import QuiesceSpec
        from haprotect.quiesce.fsfreeze import FsFreezeQuiescer
        try:
            FsFreezeQuiescer().hold(QuiesceSpec("fsfreeze", "s", options={"mountpoint": "/"}))
        except QuiesceError as exc:
            print(exc)
        """
    )
    if os.geteuid() == 0:
        require_component(
            "setpriv (to drop root)", shutil.which("setpriv") is not None, "util-linux"
        )
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
    else:
        argv = [sys.executable]
    done = subprocess.run([*argv, "-c", code], capture_output=True, text=True, cwd="/", check=False)
    assert done.stdout.strip() == "fsfreeze needs root", done.stderr


def test_resume_without_a_hold_does_nothing() -> None:
    assert FsFreezeQuiescer().resume(spec("/nonexistent")).details["thawed"] == "false"
