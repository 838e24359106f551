"""``haprotect discover`` and ``haprotect plan`` on a main.cf, end to end; golden files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, ROOT
from tests.golden_files import check_golden, check_golden_text
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.model.topology_json import topology_to_json
from haprotect.policy.generate import generate
from haprotect.policy.io import dump_policy, load_policy, parse_policy
from haprotect.policy.rules_file import load_rules
from haprotect.sources import DiscoverOptions, discover

ERP = FIXTURES / "vcs" / "erp" / "main.cf"
SOURCE = f"vcs+file://{ERP.relative_to(ROOT)}"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(ROOT)
    return CliRunner()


def test_discover_json_through_the_cli(runner: CliRunner) -> None:
    result = runner.invoke(app, ["discover", "--json", SOURCE])
    assert result.exit_code == 0, result.output
    (cluster,) = json.loads(result.stdout)["clusters"]
    assert cluster["manager"] == "vcs"
    mount = next(d for d in cluster["datasets"] if d["id"] == "oradata_mnt")
    assert (mount["replication"], mount["primary"]) == ("replicated", "erp1")


def test_discover_table_through_the_cli(runner: CliRunner) -> None:
    result = runner.invoke(app, ["discover", SOURCE])
    assert result.exit_code == 0, result.output
    assert "erp_prod (vcs)" in result.stdout and "application erp_web" in result.stdout


def test_plan_writes_a_policy_with_the_vcs_groups_as_tiers(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "erp.policy.yaml"
    result = runner.invoke(app, ["plan", SOURCE, "-o", str(out)])
    assert result.exit_code == 0, result.output
    policy = load_policy(out)
    (group,) = [g for g in policy.groups if g.name == "erp_web"]
    assert [t.name for t in group.tiers] == ["erp_rep", "erp_db", "erp_web"]
    assert group.quiesce_order[0] == "erp_web"
    items = {i.dataset: i for i in policy.items}
    assert items["oradata_mnt"].what.replication.value == "replicated"


def test_a_malformed_main_cf_is_one_line_on_stderr_with_exit_3(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "main.cf"
    bad.write_text("group g (\n  SystemList = { a = 0 \n)\n")
    result = runner.invoke(app, ["discover", f"vcs+file://{bad}"])
    assert result.exit_code == 3
    assert result.stderr.splitlines()[0] == (
        f"haprotect: error: {bad}:3: expected an item of SystemList's value, found ')'"
    )


def test_erp_topology_and_policy_match_golden() -> None:
    topology = discover(f"vcs+file://{ERP}", DiscoverOptions())
    check_golden("vcs-erp.topology.json", topology_to_json(topology))
    policy = generate(topology, load_rules(None), source=SOURCE, now=NOW)
    text = dump_policy(policy)
    check_golden_text("vcs-erp.policy.yaml", text)
    assert parse_policy(text, "vcs-erp.policy.yaml") == policy


def test_explain_and_drift_on_a_vcs_policy(runner: CliRunner, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    for name in ("main.cf", "types.cf", "vvrtypes.cf", "main.cf.hastatus"):
        (conf / name).write_text((ERP.parent / name).read_text())
    source = f"vcs+file://{conf / 'main.cf'}"
    policy = tmp_path / "erp.policy.yaml"
    assert runner.invoke(app, ["plan", source, "-o", str(policy)]).exit_code == 0
    explained = runner.invoke(app, ["explain", str(policy), "--json", "-d", "oradata_mnt"])
    assert explained.exit_code == 0, explained.output
    (item,) = json.loads(explained.stdout)["items"]
    assert "RVGPrimary ora_rvg_pri is online (erp1)" in item["lines"][0]["because"]
    # a failover (erp_db online on erp2 now) is not drift
    hastatus = (conf / "main.cf.hastatus").read_text()
    moved = (
        hastatus.replace("erp_db          erp1                 Y          N               ONLINE",
                         "erp_db          erp1                 Y          N               OFFLINE")
        .replace("erp_db          erp2                 Y          N               OFFLINE",
                 "erp_db          erp2                 Y          N               ONLINE")
    )  # fmt: skip
    assert moved.count("ONLINE") == hastatus.count("ONLINE") and moved != hastatus
    (conf / "main.cf.hastatus").write_text(moved)
    assert runner.invoke(app, ["drift", str(policy)]).exit_code == 0
    # a new Mount in a group is HA data the policy does not cover
    main = conf / "main.cf"
    main.write_text(
        main.read_text()
        + '\n        Mount logs_mnt (\n MountPoint = "/logs"\n BlockDevice = "/dev/sdd1"\n'
        " FSType = xfs\n )\n"
    )
    drifted = runner.invoke(app, ["drift", str(policy), "--json"])
    assert drifted.exit_code == 1, drifted.output
    assert "logs_mnt" in drifted.stdout
