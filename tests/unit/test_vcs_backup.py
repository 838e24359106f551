"""A VCS Mount, end to end: discover, plan, backup from the system it is online on, restore."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from typer.testing import CliRunner

from haprotect.cli.main import app

MAIN_CF = """\
include "types.cf"

cluster shop (
        UserNames = {{ admin = hashedhashed }}
        )

system n1 (
        )

system n2 (
        )

group files_sg (
        SystemList = {{ n2 = 1, n1 = 0 }}
        AutoStartList = {{ n1 }}
        )

        Mount files_mnt (
                MountPoint = "{data}"
                BlockDevice = "/dev/sdb1"
                FSType = ext4
                )

        IP files_ip (
                Device = eth0
                Address = "192.0.2.10"
                )

        files_ip requires files_mnt
"""
HASTATUS = """\
-- SYSTEM STATE
-- System               State                Frozen

A  n1                   RUNNING              0
A  n2                   RUNNING              0

-- GROUP STATE
-- Group           System               Probed     AutoDisabled    State

B  files_sg        n1                   Y          N               ONLINE
B  files_sg        n2                   Y          N               OFFLINE
"""


def test_a_vcs_mount_is_backed_up_from_its_online_system_and_restored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.db").write_bytes(os.urandom(7000))
    main = tmp_path / "main.cf"
    main.write_text(MAIN_CF.format(data=data))
    (tmp_path / "main.cf.hastatus").write_text(HASTATUS)
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"where: file://{tmp_path}/repo\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"nodes": {"n1": {"local": True}}}))
    env = {"HAPROTECT_PASSWORD": "pw", "HAPROTECT_STAGING": str(tmp_path / "staging")}
    runner = CliRunner()
    policy = tmp_path / "policy.yaml"
    planned = runner.invoke(
        app, ["plan", f"vcs+file://{main}", "-o", str(policy), "--rules", str(rules)]
    )
    assert planned.exit_code == 0, planned.output
    assert "hashedhashed" not in policy.read_text()
    dry = runner.invoke(
        app, ["backup", str(policy), "--inventory", str(inventory), "--dry-run"], env=env
    )
    assert dry.exit_code == 0, dry.output
    assert "files_mnt (filesystem): mover files, read from n1" in dry.stdout
    done = runner.invoke(
        app, ["backup", str(policy), "--inventory", str(inventory), "--init", "--json"], env=env
    )
    assert done.exit_code == 0, done.output
    finished = json.loads(done.stdout.splitlines()[-1])
    assert finished["result"]["status"] == "completed"
    (data / "orders.db").unlink()
    restored = runner.invoke(
        app,
        ["restore", "latest", "--repo", f"file://{tmp_path}/repo", "--inventory", str(inventory)],
        input="all\noriginal\ny\ny\n",
        env=env,
    )
    assert restored.exit_code == 0, restored.output
    assert (data / "orders.db").stat().st_size == 7000
