"""Names that carry markup and quotes render escaped on every page of the console.

A cluster's resource ids, descriptions and parameters end up in policies,
statuses, runs and their events; each of them here carries ``<script>``,
both quote characters and an ampersand, and no page may hand any of them
to the browser as markup.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from fastapi.testclient import TestClient
from lxml import html as lxml_html
from tests.api_fakes import FakeDataSet, FakeLastRun, FakeSetRef, FakeStatus
from tests.console_site import POLICY, Site, client_of, csrf_of, login, make_site

from haprotect.catalog import Role, RunStatus, Trigger

EVIL = """<script>alert("x&y")</script>'"""
ESCAPED = "&lt;script&gt;alert(&#34;x&amp;y&#34;)&lt;/script&gt;&#39;"
NAME = f"shop{EVIL}"


def hostile(value: Any) -> Any:
    """Every string of a policy document with ``shop`` in it carrying :data:`EVIL`."""
    if isinstance(value, str):
        return value.replace("shop", NAME)
    if isinstance(value, list):
        return [hostile(v) for v in value]
    if isinstance(value, dict):
        return {k: hostile(v) for k, v in value.items()}
    return value


def hostile_policy(schedule: str = "0 * * * *") -> str:
    doc = hostile(yaml.safe_load(POLICY))
    doc["spec"]["items"][0]["schedule"] = schedule
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = make_site(tmp_path)
    catalog = site.catalog
    catalog.apply_policy(NAME, hostile_policy(), by=NAME)
    catalog.approve(NAME, 1, by=NAME, comment=EVIL)
    catalog.apply_policy(NAME, hostile_policy("0 */6 * * *"), by=NAME)
    site.control.shown = FakeStatus(
        datasets=(
            FakeDataSet(
                cluster=NAME,
                application=NAME,
                dataset=f"fs_{NAME}",
                job=f"group:{NAME}/{NAME}",
                repository=f"file:///srv/{NAME}",
                last_complete=FakeSetRef(id=NAME),
                last_run=FakeLastRun(outcome=EVIL),
                copies=(NAME,),
                drift=(f"resource {NAME} moved",),
            ),
        )
    )
    run = catalog.start_run(f"group:{NAME}/{NAME}", repository=NAME, trigger=Trigger.MANUAL)
    ref = {"set_id": NAME, "set_name": NAME, "cluster": NAME, "tier": NAME, "dataset": NAME,
           "kind": EVIL}  # fmt: skip
    for kind, payload in [
        ("set_started", {"set_id": NAME, "name": NAME, "application": NAME, "repository": NAME,
                         "order": [NAME]}),
        ("item_started", {"item": ref, "action": EVIL, "node": NAME}),
        ("item_finished", {"item": ref, "status": EVIL, "message": EVIL, "node": NAME,
                           "snapshot_id": NAME, "seconds": 1.0}),
        ("issue", {"scope": NAME, "severity": "error", "message": EVIL}),
        ("issue", {"scope": NAME, "severity": "warning", "message": EVIL}),
        ("note", {"scope": NAME, "message": EVIL}),
        ("tier_finished", {"set_id": NAME, "tier": NAME, "ok": False, "message": EVIL}),
    ]:  # fmt: skip
        catalog.record_event(run.id, kind, payload)
    catalog.finish_run(run.id, RunStatus.FAILED, error=EVIL)
    return site


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    yield from client_of(site)


def assert_escaped(page: str, where: str) -> None:
    assert "<script" not in page, where
    assert 'alert("' not in page and "</script>'" not in page, where
    assert ESCAPED in page, where
    assert not lxml_html.fromstring(page).xpath("//script"), where


def test_every_page_escapes_names_with_markup_and_quotes(client: TestClient, site: Site) -> None:
    login(client, site.catalog.add_token(f"admin {EVIL}", Role.ADMIN).secret)
    pages = [
        "/console/",
        "/console/policies",
        f"/console/policies/{quote(NAME, safe='')}",
        "/console/runs",
        "/console/runs/1",
    ]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert_escaped(answer.text, path)
    missing = client.get(f"/console/policies/{quote(EVIL, safe='')}")
    assert missing.status_code == 404
    assert_escaped(missing.text, "a policy that does not exist")


def test_the_login_page_escapes_where_it_sends_back_to(client: TestClient) -> None:
    answer = client.get("/console/login", params={"then": f"/console/{EVIL}"})
    assert answer.status_code == 200
    assert_escaped(answer.text, "login")


def test_approving_a_policy_whose_name_carries_markup(client: TestClient, site: Site) -> None:
    login(client, site.secrets[Role.ADMIN])
    review = client.get(f"/console/policies/{quote(NAME, safe='')}")
    doc = lxml_html.fromstring(review.text)
    (action,) = doc.xpath("//form[contains(@action, '/approve')]/@action")
    done = client.post(
        action,
        data={"csrf": csrf_of(review.text), "number": "2"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert site.catalog.approved(NAME).number == 2
