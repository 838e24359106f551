"""Schemathesis over the OpenAPI document: no server error, every answer matches its schema.

The application runs on a real SQLite catalog holding a policy with two
versions, finished runs with events, sets and an alert, and the fake service
(runs it starts end at once, so no event stream waits). Requests carry an
admin's token; the number of examples is bounded so the run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.api_fakes import FakeControl
from tests.conftest import GOLDEN

from haprotect.api import ApiSettings
from haprotect.api.app import attach, build_app
from haprotect.catalog import AlertKind, Catalog, Role, RunStatus, SetRecord, Trigger

POLICY = (GOLDEN / "pacemaker-shop.policy.yaml").read_text(encoding="utf-8")
SECRET: dict[str, str] = {}


def seeded(path: Path) -> Catalog:
    catalog = Catalog.open(f"sqlite:///{path / 'catalog.db'}")
    catalog.apply_policy("shop", POLICY, by="seed")
    catalog.approve("shop", by="seed")
    catalog.apply_policy("shop", POLICY.replace("0 * * * *", "*/5 * * * *", 1), by="seed")
    for status in (RunStatus.COMPLETED, RunStatus.FAILED):
        run = catalog.start_run("group:shop/shop", repository="r", trigger=Trigger.SCHEDULED)
        catalog.record_event(run.id, "progress", {"bytes": 1})
        catalog.finish_run(run.id, status, set_id="s1", error=None)
    taken = datetime(2026, 3, 1, tzinfo=UTC)
    catalog.record_set(SetRecord("r", "s1", "shop", taken, complete=True, copied_to=("r2",)))
    catalog.raise_alert(AlertKind.FAILURE, "group:shop/shop", "it failed")
    SECRET["admin"] = catalog.add_token("schema-admin", Role.ADMIN).secret
    return catalog


APP = build_app()
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    catalog = seeded(tmp_path_factory.mktemp("schema"))
    attach(APP, catalog, FakeControl(catalog, instant=True), ApiSettings(poll_seconds=0.01))
    yield
    catalog.close()


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_every_answer_matches_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {SECRET['admin']}"},
        checks=[
            not_a_server_error,
            response_schema_conformance,
            status_code_conformance,
            content_type_conformance,
        ],
    )
