"""What the console's pages show: the dashboard, a policy's review, runs and a run's detail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import html as lxml_html
from tests.api_fakes import T0, FakeDataSet, FakeLastRun, FakeRpo, FakeStatus
from tests.console_site import POLICY, Site, client_of, login, make_site

from haprotect.catalog import Role, RunStatus, Trigger
from haprotect.errors import ComponentError

PAGES = ("/console/", "/console/policies", "/console/policies/shop", "/console/runs")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    yield from client_of(site)


def text_of(page: str) -> str:
    """The page's text, each element's apart, white space folded (none before a colon)."""
    return " ".join(" ".join(lxml_html.fromstring(page).itertext()).split()).replace(" :", ":")


def test_the_dashboard_shows_each_data_sets_protection(client: TestClient, site: Site) -> None:
    site.control.shown = FakeStatus(
        datasets=(
            FakeDataSet(),
            FakeDataSet(
                dataset="db_shop",
                rpo=FakeRpo(breached=True, age=timedelta(hours=3)),
                last_run=FakeLastRun(outcome="failed"),
                copies=(),
                drift=("resource db_shop moved to another group",),
            ),
            FakeDataSet(application="wiki", dataset="fs_wiki", last_complete=None, last_run=None),
        )
    )
    failed = site.catalog.start_run(
        "group:shop/shop", repository="file:///r", trigger=Trigger.RETRY
    )
    site.catalog.finish_run(failed.id, RunStatus.FAILED, error="the standby is unreachable")
    site.catalog.apply_policy("shop", POLICY, by="test")
    login(client, site.secrets[Role.VIEWER])
    text = text_of(client.get("/console/").text)

    assert "1 data set(s) not protected as their schedule promises" in text
    assert "shop on cluster shop 1 breached" in text
    assert "wiki on cluster shop protected" in text
    assert "fs_shop set-1 30m ago kept due 2026-03-01 12:00 UTC, by 2026-03-01 12:05 UTC" in text
    assert "0 * * * * 2026-03-01 12:30 UTC 1/2 completed" in text
    assert "db_shop set-1 3h ago breached" in text
    assert "0/2 failed 1" in text
    assert "fs_wiki none kept" in text
    assert "never ran" in text
    assert "shop/db_shop: resource db_shop moved to another group" in text
    assert f"Run {failed.id} of group:shop/shop: failed" in text
    assert "the standby is unreachable" in text
    assert "Policy shop: version 1 pending" in text


def test_the_dashboard_says_when_the_service_cannot_tell(client: TestClient, site: Site) -> None:
    login(client, site.secrets[Role.VIEWER])
    site.control.failure = ComponentError("the service is stopping", hint="try again")
    answer = client.get("/console/")
    assert answer.status_code == 503
    assert "the service is stopping" in text_of(answer.text)


def test_a_policy_review_shows_each_decision_and_the_difference_from_the_approved(
    client: TestClient, site: Site
) -> None:
    site.catalog.apply_policy("shop", POLICY, by="test")
    site.catalog.approve("shop", 1, by="test")
    hourly = "    schedule: 0 * * * *\n"
    assert hourly in POLICY
    site.catalog.apply_policy(
        "shop", POLICY.replace(hourly, "    schedule: 0 */6 * * *\n", 1), by="x"
    )
    login(client, site.secrets[Role.ADMIN])
    text = text_of(client.get("/console/policies/shop").text)

    assert "Approved: version 1 (by test" in text
    assert "Version 2 waits for review (applied by x" in text
    assert "What version 2 changes from version 1" in text
    assert "changed item shop/fs_shop schedule 0 * * * * 0 */6 * * *" in text
    assert "Decisions of version 2 (pending)" in text
    assert "schedule 0 */6 * * *" in text
    assert "include protected dataset fs_shop is HA" in text
    assert "source: dataset" not in text and "dataset fs_shop" in text
    assert "Left out Data set Because From shop/drbd_shop covered by filesystem fs_shop" in text
    assert "2 pending x," in text and "1 approved test," in text
    listing = text_of(client.get("/console/policies").text)
    assert "shop 1 2 2" in listing


def test_a_review_with_nothing_pending_shows_the_approved_decisions(
    client: TestClient, site: Site
) -> None:
    site.catalog.apply_policy("shop", POLICY, by="test")
    site.catalog.approve("shop", 1, by="test")
    login(client, site.secrets[Role.ADMIN])
    page = client.get("/console/policies/shop").text
    assert "Decisions of version 1 (approved)" in text_of(page)
    assert "waits for review" not in page and "/approve" not in page
    assert client.get("/console/policies/nothing").status_code == 404


def record_backup(site: Site) -> int:
    """A run with the events of a two-tier backup: one item ok, one failed, a warning."""
    run = site.catalog.start_run("group:shop/shop", repository="file:///r", trigger=Trigger.MANUAL)
    set_ref = {"set_id": "s1", "set_name": "shop-1", "cluster": "shop"}

    def item(tier: str, dataset: str, kind: str) -> dict[str, object]:
        return {**set_ref, "tier": tier, "dataset": dataset, "kind": kind}

    db, fs = item("database", "pg_shop", "postgresql"), item("storage", "fs_shop", "filesystem")
    for kind, payload in [
        ("run_started", {"operation": "backup", "sets": 1, "items": 2}),
        ("set_started", {"set_id": "s1", "name": "shop-1", "application": "shop",
                         "repository": "file:///r", "order": ["database", "storage"]}),
        ("item_started", {"item": db, "scope": "shop/pg_shop", "action": "base backup",
                          "node": "bravo"}),
        ("item_finished", {"item": db, "scope": "shop/pg_shop", "status": "ok",
                           "message": "copied 3 files", "node": "bravo", "seconds": 2.5}),
        ("issue", {"scope": "shop/pg_shop", "severity": "warning",
                   "message": "the standby lagged 4 s"}),
        ("tier_finished", {"set_id": "s1", "tier": "database", "ok": True}),
        ("item_started", {"item": fs, "scope": "shop/fs_shop", "action": "copy files"}),
        ("item_progress", {"item": fs, "scope": "shop/fs_shop", "files_done": 1,
                           "bytes_done": 4096, "bytes_total": 8192}),
        ("item_finished", {"item": fs, "scope": "shop/fs_shop", "status": "failed",
                           "message": "permission denied", "node": "alpha", "seconds": 0.5}),
        ("issue", {"scope": "shop/fs_shop", "severity": "error",
                   "message": "/srv/shop/a: permission denied"}),
        ("tier_finished", {"set_id": "s1", "tier": "storage", "ok": False,
                           "message": "1 item failed"}),
        ("set_finished", {"set_id": "s1", "name": "shop-1", "ok": False}),
    ]:  # fmt: skip
        site.catalog.record_event(run.id, kind, payload)
    site.catalog.finish_run(run.id, RunStatus.PARTIALLY_FAILED, error="shop/fs_shop failed")
    return run.id


def test_a_runs_detail_shows_its_tiers_items_warnings_and_errors(
    client: TestClient, site: Site
) -> None:
    run_id = record_backup(site)
    login(client, site.secrets[Role.VIEWER])
    listing = text_of(client.get("/console/runs").text)
    assert f"{run_id} group:shop/shop partially failed manual" in listing
    text = text_of(client.get(f"/console/runs/{run_id}").text)

    assert "Status partially failed" in text
    assert "Set shop-1 of shop not complete" in text
    database, storage = text.index("Tier database done"), text.index("Tier storage failed")
    assert database < storage
    assert "shop/pg_shop postgresql ok bravo 2.5 s copied 3 files" in text
    assert "1 item failed" in text
    assert "shop/fs_shop filesystem failed alpha 0.5 s permission denied" in text
    assert "error shop/fs_shop: /srv/shop/a: permission denied" in text
    assert "warning shop/pg_shop: the standby lagged 4 s" in text
    assert "shop/fs_shop failed" in text


def test_a_running_items_progress_and_an_unknown_run(client: TestClient, site: Site) -> None:
    run = site.catalog.start_run("item:shop/fs", repository="file:///r", trigger=Trigger.MANUAL)
    ref = {"set_id": "s", "set_name": "n", "cluster": "shop", "tier": "t", "dataset": "fs",
           "kind": "filesystem"}  # fmt: skip
    site.catalog.record_event(run.id, "item_started", {"item": ref, "action": "copy files"})
    site.catalog.record_event(
        run.id, "item_progress", {"item": ref, "bytes_done": 10, "bytes_total": 20}
    )
    site.catalog.record_event(run.id, "strange", {"item": 3})
    login(client, site.secrets[Role.VIEWER])
    text = text_of(client.get(f"/console/runs/{run.id}").text)
    assert "Tier t not finished" in text
    assert "shop/fs filesystem running - - copy files (10 of 20 bytes)" in text
    assert client.get("/console/runs/999").status_code == 404
    assert client.get("/console/runs/nonsense").status_code == 404


def test_runs_come_a_page_at_a_time(client: TestClient, site: Site) -> None:
    for n in range(55):
        site.catalog.queue_run(f"item:c/d{n}", repository="file:///r", trigger=Trigger.SCHEDULED)
    login(client, site.secrets[Role.VIEWER])
    first = client.get("/console/runs").text
    assert "item:c/d54" in first and "item:c/d4<" not in first
    assert 'href="/console/runs?offset=50">Older runs' in first
    second = client.get("/console/runs?offset=50").text
    assert "item:c/d4<" in second and "Newer runs" in second and "Older runs" not in second


def test_every_page_has_landmarks_a_viewport_labels_and_the_security_headers(
    client: TestClient, site: Site
) -> None:
    site.catalog.apply_policy("shop", POLICY, by="test")
    record_backup(site)
    login(client, site.secrets[Role.ADMIN])
    for path in (*PAGES, "/console/runs/1", "/console/login?then=/console/"):
        if path.startswith("/console/login"):
            client.cookies.clear()
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert "script-src" not in answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        doc = lxml_html.fromstring(answer.text)
        assert doc.get("lang") == "en"
        assert doc.xpath("//meta[@name='viewport']/@content") == [
            "width=device-width, initial-scale=1"
        ]
        assert len(doc.xpath("//main")) == 1 and len(doc.xpath("//h1")) == 1, path
        assert doc.xpath("//a[@href='#main']"), path
        assert not doc.xpath("//script"), path
        for field in doc.xpath("//input[not(@type='hidden')]"):
            assert doc.xpath(f"//label[@for='{field.get('id')}']"), (path, field.get("name"))
        for table in doc.xpath("//table"):
            assert table.xpath("caption") and table.xpath(".//th[@scope]"), path


def test_the_stylesheet_is_served_and_fits_phone_widths(client: TestClient) -> None:
    answer = client.get("/console/static/console.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert "@media (max-width:" in answer.text and ":focus-visible" in answer.text


def test_a_late_approval_of_another_version_is_a_conflict_page(
    client: TestClient, site: Site
) -> None:
    site.catalog.apply_policy("shop", POLICY, by="test")
    csrf = login(client, site.secrets[Role.ADMIN])
    site.catalog.reject("shop", 1, by="someone else")
    answer = client.post("/console/policies/shop/approve", data={"csrf": csrf, "number": "1"})
    assert answer.status_code == 409
    assert "Refused" in answer.text or "Error" in answer.text


def test_a_dashboard_without_policies(client: TestClient, site: Site) -> None:
    site.control.shown = replace(FakeStatus(), datasets=(), at=T0)
    login(client, site.secrets[Role.VIEWER])
    text = text_of(client.get("/console/").text)
    assert "no approved policy yet" in text
    assert "Recent failures None." in text
