"""The OpenAPI document: generated from the code, committed current, complete for every route."""

from __future__ import annotations

from typing import Any

from tests.conftest import ROOT

from haprotect.api.openapi import document, document_text

COMMITTED = ROOT / "docs" / "api" / "openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_the_committed_document_is_the_codes() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == document_text(), (
        "docs/api/openapi.json is stale: python -m haprotect.api.openapi docs/api/openapi.json"
    )


def test_every_route_has_a_tag_a_summary_a_success_schema_and_the_error_shape() -> None:
    doc = document()
    found = operations(doc)
    assert len(found) >= 25
    for method, path, operation in found:
        where = f"{method.upper()} {path}"
        assert operation.get("tags") and operation.get("summary"), where
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert len(success) >= 1, where
        for code in success:
            content = operation["responses"][code].get("content", {})
            assert content and all("schema" in m for m in content.values()), (where, code)
            assert all(m["schema"] != {} for m in content.values()), (where, code)
        for code, answer in operation["responses"].items():
            if code.startswith(("4", "5")):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (where, code)


def test_routes_under_the_version_need_a_bearer_token_and_healthz_does_not() -> None:
    for method, path, operation in operations(document()):
        needs = operation.get("security") == [{"HTTPBearer": []}]
        assert needs == (path != "/healthz"), f"{method.upper()} {path}"
        assert path.startswith("/api/v1/") or path in ("/healthz", "/metrics")
