"""``haprotect schedule``: each job of a policy and the times it runs in a window."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_site import Site, invoke, make_site

from haprotect.policy.document import to_data
from haprotect.policy.io import dump_yaml, load_policy


def site_with_a_lone_item(tmp_path: Path) -> Site:
    """The site's policy, with a daily item in no group added next to its hourly group."""
    site = make_site(tmp_path)
    data = to_data(load_policy(Path(site.path("policy.yaml"))))
    lone = dict(data["spec"]["items"][0], dataset="lone", schedule="30 2 * * *")
    lone["priority"] = "low"
    data["spec"]["items"].append(lone)
    Path(site.path("policy.yaml")).write_text(dump_yaml(data))
    return site


def test_the_text_lists_each_run_in_time_order_with_its_job(tmp_path: Path) -> None:
    site = site_with_a_lone_item(tmp_path)
    policy = site.path("policy.yaml")
    done = invoke("schedule", policy, "--from", "2026-12-08T00:00Z", "--hours", "3")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].endswith("2 jobs, 4 runs from 2026-12-08T00:00Z to 2026-12-08T03:00Z")
    runs = [line.split()[:3] for line in lines[1:]]
    group = [r for r in runs if r[1].startswith("group:")]
    assert [r[0] for r in group] == ["2026-12-08T00:00Z", "2026-12-08T01:00Z", "2026-12-08T02:00Z"]
    assert ["2026-12-08T02:30Z", "item:c1/lone", "low"] in runs
    assert [r[0] for r in runs] == sorted(r[0] for r in runs)


def test_json_gives_each_job_its_runs_and_what_it_protects(tmp_path: Path) -> None:
    site = site_with_a_lone_item(tmp_path)
    policy = site.path("policy.yaml")
    done = invoke("schedule", policy, "--from", "2026-12-08T01:00+01:00", "--json")
    assert done.exit_code == 0, done.output
    plan = json.loads(done.stdout)
    assert plan["from"] == "2026-12-08T00:00:00+00:00" and plan["to"] == "2026-12-09T00:00:00+00:00"
    jobs = {job["key"]: job for job in plan["jobs"]}
    lone = jobs["item:c1/lone"]
    assert lone["datasets"] == ["lone"] and lone["applications"] == []
    assert lone["runs"] == [{"at": "2026-12-08T02:30:00+00:00", "kind": "scheduled"}]
    (group,) = (job for job in plan["jobs"] if job["kind"] == "group")
    assert len(group["runs"]) == 24 and group["applications"] == [group["key"].split("/")[-1]]
    assert group["priority"] and group["repository"] and group["timezone"] == "UTC"
