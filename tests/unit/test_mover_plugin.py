"""A third-party mover, installed through the ``haprotect.movers`` entry point, takes part in a cut.

The plug-in (``tests/plugins/spoolmover.py``) copies a kind of data haprotect
does not know; it is installed as a real distribution (a ``*.dist-info``
with ``entry_points.txt`` on the path of a fresh interpreter), which backs
up a set whose tier is held by a quiescer, into a repository on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).parent.parent / "plugins"


def install(site: Path) -> None:
    """``spoolmover`` as an installed distribution, as pip would leave it in ``site``."""
    shutil.copy(PLUGINS / "spoolmover.py", site / "spoolmover.py")
    info = site / "haprotect_spool-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: haprotect-spool\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[haprotect.movers]\nspool = spoolmover:factory\n")


def back_up(tmp_path: Path, site: Path | None) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "work"
    (work / "spool").mkdir(parents=True)
    (work / "spool" / "queue").write_text("before the cut\n")
    paths = [str(site)] if site is not None else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, *sys.path]))
    return subprocess.run(
        [sys.executable, str(PLUGINS / "spool_backup.py"), str(work)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_a_plugin_mover_cuts_while_the_tiers_are_held(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    install(site)
    done = back_up(tmp_path, site)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "completed", out
    journal = (tmp_path / "work" / "journal").read_text().splitlines()
    assert journal == [
        "hold queue",
        "prepare_cut",
        "resume queue",
        "backup before the cut",
        "release",
    ]
    (meta,) = out["snapshots"]
    assert meta["set"]["quiesce"]["cuts"] == {"c1/mail": {"cut": "spool copy"}}


def test_without_the_plugin_the_kind_has_no_mover(tmp_path: Path) -> None:
    done = back_up(tmp_path, None)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "failed" and out["snapshots"] == []
    assert (tmp_path / "work" / "journal").read_text().splitlines() == [
        "hold queue",
        "resume queue",
    ]
