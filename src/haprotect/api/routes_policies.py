"""Policies: list, versions, a version's YAML, the diff under review, apply, approve, reject.

Applying stores a version: pending, or approved at once when the rules the
policy was made with say ``auto_approve`` (its ``metadata.rules``). Only an
administrator applies and reviews; only the approved version of a policy runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from haprotect.api import schemas
from haprotect.api.auth import Admin, Viewer
from haprotect.api.errors import ApiError, responses
from haprotect.api.policy_review import changes_between, summaries
from haprotect.api.state import catalog_of
from haprotect.catalog.records import PolicyVersion
from haprotect.policy import parse_policy
from haprotect.policy.diff import change_to_json

router = APIRouter(prefix="/policies", tags=["policies"])

PolicyName = Annotated[str, Path(description="the policy's metadata.name")]
Number = Annotated[int, Path(ge=1, le=2**31, description="the version's number")]
YAML = "application/yaml"


def summary(version: PolicyVersion) -> schemas.VersionSummary:
    return schemas.VersionSummary.model_validate(version)


@router.get("", summary="Every policy and the state of its versions", responses=responses())
def list_policies(request: Request, _: Viewer) -> list[schemas.PolicySummary]:
    return summaries(catalog_of(request))


@router.post(
    "",
    summary="Apply a policy: store its text as the next version",
    description="Pending until approved, unless the policy's rules auto-approve it. "
    "The same text as the newest version stores nothing (200, created false).",
    status_code=201,
    responses={**responses(403), 200: {"model": schemas.Applied, "description": "unchanged"}},
)
def apply_policy(
    request: Request, response: Response, body: schemas.ApplyBody, token: Admin
) -> schemas.Applied:
    policy = parse_policy(body.text, "the request's policy text")
    applied = catalog_of(request).apply_policy(
        policy.metadata.name,
        body.text,
        by=token.name,
        auto_approve=policy.metadata.rules.auto_approve,
    )
    if not applied.created:
        response.status_code = 200
    return schemas.Applied(version=summary(applied.version), created=applied.created)


@router.get(
    "/{name}/versions",
    summary="A policy's versions, oldest first",
    responses=responses(404),
)
def list_versions(request: Request, name: PolicyName, _: Viewer) -> list[schemas.VersionSummary]:
    return [summary(v) for v in catalog_of(request).versions(name)]


@router.get(
    "/{name}/versions/{number}",
    summary="One version of a policy, with its text",
    responses=responses(404),
)
def show_version(request: Request, name: PolicyName, number: Number, _: Viewer) -> schemas.Version:
    return schemas.Version.model_validate(catalog_of(request).version(name, number))


@router.get(
    "/{name}/versions/{number}/yaml",
    summary="One version of a policy as its YAML file",
    response_class=Response,
    responses={
        **responses(404),
        200: {"content": {YAML: {"schema": {"type": "string"}}}, "description": "the YAML"},
    },
)
def version_yaml(request: Request, name: PolicyName, number: Number, _: Viewer) -> Response:
    return Response(catalog_of(request).version(name, number).text, media_type=YAML)


@router.get(
    "/{name}/diff",
    summary="What a version changes: by default the newest pending one against the approved",
    description="With no approved version, every item of the new one is added.",
    responses=responses(404, 409),
)
def diff_versions(
    request: Request,
    name: PolicyName,
    _: Viewer,
    old: Annotated[int | None, Query(ge=1, le=2**31, description="default: approved")] = None,
    new: Annotated[int | None, Query(ge=1, le=2**31, description="default: newest pending")] = None,
) -> schemas.Diff:
    catalog = catalog_of(request)
    before = catalog.version(name, old) if old is not None else catalog.approved(name)
    after = catalog.version(name, new) if new is not None else catalog.pending(name)
    if after is None:
        raise ApiError(409, f"policy {name!r} has no pending version", "name one with ?new=N")
    return schemas.Diff(
        policy=name,
        old=None if before is None else before.number,
        new=after.number,
        changes=[
            schemas.Change.model_validate(change_to_json(c)) for c in changes_between(before, after)
        ],
    )


def _review(approving: bool, summary_text: str) -> None:
    """Register the route that approves (or rejects) a pending version."""
    verb = "approve" if approving else "reject"

    @router.post(
        f"/{{name}}/{verb}", name=verb, summary=summary_text, responses=responses(403, 404, 409)
    )
    def review(
        request: Request, name: PolicyName, token: Admin, body: schemas.ReviewBody | None = None
    ) -> schemas.VersionSummary:
        catalog = catalog_of(request)
        decide = catalog.approve if approving else catalog.reject
        body = body or schemas.ReviewBody()
        return summary(decide(name, body.number, by=token.name, comment=body.comment))


_review(True, "Approve a pending version: it runs from now on, superseding the approved one")
_review(False, "Reject a pending version: it never runs")
