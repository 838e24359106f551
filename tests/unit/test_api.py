"""The REST API on a real SQLite catalog and a fake service: auth, roles, policies, runs, SSE."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.api_fakes import FakeControl
from tests.conftest import GOLDEN

from haprotect.api import ApiSettings, RestoreRequest, create_app
from haprotect.catalog import AlertKind, Catalog, Role, RunStatus, Trigger
from haprotect.errors import ComponentError

POLICY = (GOLDEN / "pacemaker-shop.policy.yaml").read_text(encoding="utf-8")
HOURLY = "    schedule: 0 * * * *\n"


@dataclass
class Api:
    client: TestClient
    catalog: Catalog
    control: FakeControl
    secrets: dict[Role, str]

    def as_(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}"}


def make_api(tmp_path: Path, settings: ApiSettings | None = None) -> Iterator[Api]:
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}")
    control = FakeControl(catalog)
    secrets = {role: catalog.add_token(f"{role}-token", role).secret for role in Role}
    app = create_app(catalog, control, settings or ApiSettings(poll_seconds=0.02))
    with TestClient(app) as client:
        yield Api(client, catalog, control, secrets)
    catalog.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


def test_no_token_an_unknown_or_a_revoked_one_is_401_with_a_bearer_challenge(api: Api) -> None:
    api.catalog.revoke_token("viewer-token")
    for headers in (
        {},
        {"Authorization": "Bearer hapt_nonsense"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        api.as_(Role.VIEWER),
    ):
        answer = api.client.get("/api/v1/runs", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert set(answer.json()) == {"error", "hint"}
    assert api.client.get("/api/v1/runs", headers=api.as_(Role.OPERATOR)).status_code == 200


def test_a_viewer_starting_a_restore_gets_403_and_an_operator_starts_it(api: Api) -> None:
    body = {"application": "shop", "tiers": ["db"], "target": "/srv/restore"}
    refused = api.client.post("/api/v1/restores", json=body, headers=api.as_(Role.VIEWER))
    assert refused.status_code == 403
    assert (
        refused.json()["error"] == "token 'viewer-token' has the role viewer; this needs operator"
    )
    assert api.control.restores == []

    started = api.client.post("/api/v1/restores", json=body, headers=api.as_(Role.OPERATOR))
    assert started.status_code == 202
    run = api.catalog.run(started.json()["run_id"])
    assert run.job == "restore:shop"
    assert api.control.restores == [
        (RestoreRequest("shop", "latest", ("db",), "/srv/restore"), "operator-token")
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "role"),
    [
        ("POST", "/api/v1/jobs/group:shop/shop/run", None, Role.OPERATOR),
        ("POST", "/api/v1/alerts/1/acknowledge", None, Role.OPERATOR),
        ("POST", "/api/v1/policies", {"text": POLICY}, Role.ADMIN),
        ("POST", "/api/v1/policies/shop/approve", {}, Role.ADMIN),
        ("POST", "/api/v1/policies/shop/reject", {}, Role.ADMIN),
        ("GET", "/api/v1/tokens", None, Role.ADMIN),
        ("POST", "/api/v1/tokens", {"name": "x", "role": "admin"}, Role.ADMIN),
        ("DELETE", "/api/v1/tokens/viewer-token", None, Role.ADMIN),
    ],
)
def test_each_route_refuses_the_roles_below_its_own(
    api: Api, method: str, path: str, body: object, role: Role
) -> None:
    api.catalog.raise_alert(AlertKind.FAILURE, "group:shop/shop", "it failed")
    api.catalog.apply_policy("shop", POLICY, by="test")
    below = list(Role)[: list(Role).index(role)]
    for weaker in below:
        answer = api.client.request(method, path, json=body, headers=api.as_(weaker))
        assert answer.status_code == 403, (weaker, answer.json())
    answer = api.client.request(method, path, json=body, headers=api.as_(role))
    assert answer.status_code < 400 or answer.status_code == 409, answer.json()


def test_apply_then_approve_then_a_second_version_shows_its_diff(api: Api) -> None:
    admin = api.as_(Role.ADMIN)
    first = api.client.post("/api/v1/policies", json={"text": POLICY}, headers=admin)
    assert first.status_code == 201
    assert first.json()["version"]["state"] == "pending"
    assert first.json()["version"]["created_by"] == "admin-token"
    again = api.client.post("/api/v1/policies", json={"text": POLICY}, headers=admin)
    assert (again.status_code, again.json()["created"]) == (200, False)
    new = api.client.get("/api/v1/policies/shop/diff", headers=admin).json()
    assert new["old"] is None
    assert ("added", "item", "shop/fs_shop") in [
        (c["kind"], c["section"], c["key"]) for c in new["changes"]
    ]

    approved = api.client.post("/api/v1/policies/shop/approve", json={}, headers=admin)
    assert approved.status_code == 200
    assert approved.json()["state"] == "approved"
    assert api.catalog.approved("shop") is not None

    edited = POLICY.replace(HOURLY, "    schedule: '*/5 * * * *'\n", 1)
    second = api.client.post("/api/v1/policies", json={"text": edited}, headers=admin)
    assert second.json()["version"]["number"] == 2
    diff = api.client.get("/api/v1/policies/shop/diff", headers=api.as_(Role.VIEWER)).json()
    assert (diff["old"], diff["new"]) == (1, 2)
    assert [(c["kind"], c["field"], c["old"], c["new"]) for c in diff["changes"]] == [
        ("changed", "schedule", "0 * * * *", "*/5 * * * *")
    ]
    listed = api.client.get("/api/v1/policies", headers=api.as_(Role.VIEWER)).json()
    assert listed == [{"name": "shop", "latest": 2, "approved": 1, "pending": [2]}]

    rejected = api.client.post(
        "/api/v1/policies/shop/reject", json={"number": 2, "comment": "too often"}, headers=admin
    )
    assert rejected.json()["state"] == "rejected"
    twice = api.client.post("/api/v1/policies/shop/approve", json={"number": 2}, headers=admin)
    assert twice.status_code == 409
    assert "rejected" in twice.json()["error"]

    yaml = api.client.get("/api/v1/policies/shop/versions/2/yaml", headers=admin)
    assert yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.text == edited
    versions = api.client.get("/api/v1/policies/shop/versions", headers=admin).json()
    assert [v["state"] for v in versions] == ["approved", "rejected"]


def test_a_policy_whose_rules_auto_approve_is_approved_when_applied(api: Api) -> None:
    auto = POLICY.replace("    presets: []\n", "    presets: []\n    auto_approve: true\n", 1)
    assert auto != POLICY
    plain = api.client.post("/api/v1/policies", json={"text": POLICY}, headers=api.as_(Role.ADMIN))
    assert plain.json()["version"]["state"] == "pending"
    applied = api.client.post("/api/v1/policies", json={"text": auto}, headers=api.as_(Role.ADMIN))
    assert applied.json()["version"]["state"] == "approved"
    assert api.catalog.version("shop", 1).state == "superseded"


def test_bad_input_is_a_json_error_with_the_right_status_never_a_500(api: Api) -> None:
    admin = api.as_(Role.ADMIN)
    invalid = api.client.post("/api/v1/policies", json={"text": "kind: Policy\n"}, headers=admin)
    assert invalid.status_code == 422
    assert "policy text" in invalid.json()["error"]
    not_yaml = api.client.post("/api/v1/policies", json={"text": "a: [\n"}, headers=admin)
    assert not_yaml.status_code == 422
    missing = api.client.post("/api/v1/policies", json={}, headers=admin)
    assert missing.status_code == 422
    assert missing.json()["error"].startswith("body.text")
    assert api.client.get("/api/v1/policies/nope/versions", headers=admin).status_code == 404
    assert api.client.get("/api/v1/runs/12345", headers=admin).status_code == 404
    assert api.client.get("/api/v1/runs/0", headers=admin).status_code == 422
    assert api.client.get("/api/v1/runs?status=nope", headers=admin).status_code == 422
    unknown = api.client.post("/api/v1/jobs/item:shop/nope/run", headers=admin)
    assert (unknown.status_code, unknown.json()["hint"]) == (404, "GET /api/v1/jobs lists them")
    nothing = api.client.get("/api/v1/nothing", headers=admin)
    assert (nothing.status_code, set(nothing.json())) == (404, {"error", "hint"})
    no_pending = api.client.post("/api/v1/policies", json={"text": POLICY}, headers=admin)
    assert no_pending.status_code == 201
    api.client.post("/api/v1/policies/shop/approve", headers=admin)
    assert api.client.get("/api/v1/policies/shop/diff", headers=admin).status_code == 409
    taken = api.client.post(
        "/api/v1/tokens", json={"name": "admin-token", "role": "viewer"}, headers=admin
    )
    assert taken.status_code == 409


def test_a_failing_service_is_503_and_a_bug_a_json_500(tmp_path: Path) -> None:
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}")
    control = FakeControl(catalog)
    headers = {"Authorization": f"Bearer {catalog.add_token('v', Role.VIEWER).secret}"}
    with TestClient(create_app(catalog, control), raise_server_exceptions=False) as client:
        control.failure = ComponentError("the scheduler is not running", hint="systemctl status")
        down = client.get("/api/v1/status", headers=headers)
        assert down.status_code == 503
        assert down.json() == {"error": "the scheduler is not running", "hint": "systemctl status"}
        control.failure = RuntimeError("bug")
        bug = client.get("/api/v1/status", headers=headers)
        assert bug.status_code == 500
        assert bug.json() == {
            "error": "internal error: RuntimeError",
            "hint": "see the service's log",
        }
    catalog.close()


def test_a_job_run_now_is_a_manual_run_and_a_cancel_ends_it(api: Api) -> None:
    operator = api.as_(Role.OPERATOR)
    started = api.client.post("/api/v1/jobs/group:shop/shop/run", headers=operator)
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    run = api.client.get(f"/api/v1/runs/{run_id}", headers=operator).json()
    assert (run["job"], run["trigger"], run["status"]) == ("group:shop/shop", "manual", "queued")
    assert api.control.started == [("group:shop/shop", "operator-token")]
    cancelled = api.client.post(f"/api/v1/runs/{run_id}/cancel", headers=operator)
    assert cancelled.json()["status"] == "failed"
    again = api.client.post(f"/api/v1/runs/{run_id}/cancel", headers=operator)
    assert again.status_code == 409


def test_runs_are_listed_newest_first_a_page_at_a_time_and_filtered(api: Api) -> None:
    made = [
        api.catalog.start_run(f"item:shop/d{i % 2}", repository="r", trigger=Trigger.SCHEDULED).id
        for i in range(7)
    ]
    api.catalog.finish_run(made[0], RunStatus.COMPLETED)
    viewer = api.as_(Role.VIEWER)
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = api.client.get(f"/api/v1/runs?limit=3&offset={offset}", headers=viewer).json()
        assert len(page["items"]) <= 3
        seen += [r["id"] for r in page["items"]]
        offset = page["next_offset"]
    assert seen == sorted(made, reverse=True)
    d1 = api.client.get("/api/v1/runs?job=item:shop/d1", headers=viewer).json()["items"]
    assert [r["id"] for r in d1] == [made[5], made[3], made[1]]
    done = api.client.get("/api/v1/runs?status=completed&status=failed", headers=viewer).json()[
        "items"
    ]
    assert [r["id"] for r in done] == [made[0]]


def test_status_jobs_sets_alerts_tokens_and_metrics(tmp_path: Path) -> None:
    for api in make_api(tmp_path):
        viewer, admin = api.as_(Role.VIEWER), api.as_(Role.ADMIN)
        status = api.client.get("/api/v1/status", headers=viewer).json()
        assert [d["dataset"] for d in status["datasets"]] == ["fs_shop", "db_shop"]
        assert status["datasets"][0]["rpo"]["age_seconds"] == 1800
        assert status["datasets"][0]["last_run"]["duration_seconds"] == 42
        jobs = api.client.get("/api/v1/jobs", headers=viewer).json()
        assert [j["job"] for j in jobs] == ["group:shop/shop"]

        alert = api.catalog.raise_alert(AlertKind.RPO, "shop/fs_shop", "RPO breached")
        assert (
            api.client.get("/api/v1/alerts?open=true", headers=viewer).json()[0]["id"] == alert.id
        )
        acked = api.client.post(
            f"/api/v1/alerts/{alert.id}/acknowledge", headers=api.as_(Role.OPERATOR)
        )
        assert acked.json()["acknowledged_by"] == "operator-token"
        assert api.client.get("/api/v1/alerts?open=true", headers=viewer).json() == []

        made = api.client.post(
            "/api/v1/tokens", json={"name": "grafana", "role": "viewer"}, headers=admin
        )
        assert made.status_code == 201
        secret = made.json()["secret"]
        listed = api.client.get("/api/v1/tokens", headers=admin)
        assert secret not in listed.text
        assert "grafana" in [t["name"] for t in listed.json()]
        scraper = {"Authorization": f"Bearer {secret}"}
        metrics = api.client.get("/metrics", headers=scraper)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert b"haprotect_up 1" in metrics.content
        assert api.client.get("/metrics").status_code == 401
        revoked = api.client.delete("/api/v1/tokens/grafana", headers=admin)
        assert revoked.json()["revoked_at"] is not None
        assert api.client.get("/metrics", headers=scraper).status_code == 401
        assert api.client.get("/healthz").json()["status"] == "ok"
    for api in make_api(tmp_path / "open", ApiSettings(metrics_open=True)):
        assert api.client.get("/metrics").status_code == 200
        assert api.client.get("/api/v1/status").status_code == 401


def sse(text: str) -> list[dict[str, str]]:
    """The events of a server-sent-events body (comments and retry lines left out)."""
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event", "data"):
                fields[name] = value
        if "event" in fields:
            events.append(fields)
    return events


def test_the_event_stream_replays_after_last_event_id_and_ends_with_the_run(api: Api) -> None:
    run = api.catalog.start_run("group:shop/shop", repository="r", trigger=Trigger.SCHEDULED)
    recorded = [api.catalog.record_event(run.id, "progress", {"bytes": n}) for n in range(3)]
    api.catalog.finish_run(run.id, RunStatus.COMPLETED, set_id="set-9")
    viewer = api.as_(Role.VIEWER)
    url = f"/api/v1/runs/{run.id}/events/stream"

    whole = sse(api.client.get(url, headers=viewer).text)
    assert [e.get("id") for e in whole] == [*(str(e.id) for e in recorded), None]
    assert [e["event"] for e in whole] == ["progress", "progress", "progress", "end"]
    assert '"set_id":"set-9"' in whole[-1]["data"]

    resumed = sse(
        api.client.get(url, headers={**viewer, "Last-Event-ID": str(recorded[1].id)}).text
    )
    assert [e.get("id") for e in resumed] == [str(recorded[2].id), None]
    assert api.client.get("/api/v1/runs/999/events/stream", headers=viewer).status_code == 404


def test_the_event_stream_sends_new_events_as_they_are_recorded(api: Api) -> None:
    run = api.catalog.start_run("group:shop/shop", repository="r", trigger=Trigger.SCHEDULED)
    api.catalog.record_event(run.id, "started", {})

    def later() -> None:
        time.sleep(0.2)
        api.catalog.record_event(run.id, "progress", {"bytes": 10})
        time.sleep(0.2)
        api.catalog.record_event(run.id, "progress", {"bytes": 20})
        api.catalog.finish_run(run.id, RunStatus.FAILED, error="disk full")

    writer = threading.Thread(target=later)
    writer.start()
    lines: list[str] = []
    with api.client.stream(
        "GET", f"/api/v1/runs/{run.id}/events/stream", headers=api.as_(Role.VIEWER)
    ) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines += answer.iter_lines()
    writer.join()
    events = sse("\n".join(lines))
    assert [e["event"] for e in events] == ["started", "progress", "progress", "end"]
    assert '"bytes":20' in events[2]["data"]
    assert '"status":"failed"' in events[3]["data"]
