"""The pages: dashboard, policies and their review, runs and a run's detail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from haprotect.api.console.dashboard import dashboard
from haprotect.api.console.guard import Admin, Form, Refused, Viewer
from haprotect.api.console.render import link, page
from haprotect.api.console.review import review
from haprotect.api.console.runview import run_detail
from haprotect.api.policy_review import summaries
from haprotect.api.state import catalog_of, control_of
from haprotect.catalog.records import Role

router = APIRouter()
PAGE = 50
RunId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/", name="dashboard")
def show_dashboard(request: Request, who: Viewer) -> Response:
    found = dashboard(catalog_of(request), control_of(request))
    return page(request, "dashboard.html", title="Dashboard", who=who, board=found)


@router.get("/policies", name="policies")
def list_policies(request: Request, who: Viewer) -> Response:
    found = summaries(catalog_of(request))
    return page(request, "policies.html", title="Policies", who=who, policies=found)


@router.get("/policies/{name:path}", name="policy")
def show_policy(request: Request, name: str, who: Viewer) -> Response:
    found = review(catalog_of(request), name)
    return page(
        request,
        "policy.html",
        title=f"Policy {name}",
        who=who,
        review=found,
        may_review=who.may(Role.ADMIN),
    )


def _decide(request: Request, name: str, form: Form, who: Admin, approving: bool) -> Response:
    try:
        number = int(form.get("number", ""))
    except ValueError:
        raise Refused(400, "the form names no version", "review the policy again") from None
    catalog = catalog_of(request)
    decide = catalog.approve if approving else catalog.reject
    decide(name, number, by=who.name, comment=form.get("comment", "").strip() or None)
    return RedirectResponse(link(request, "policy", name=name), status_code=303)


@router.post("/policies/{name:path}/approve", name="approve")
def approve(request: Request, name: str, form: Form, who: Admin) -> Response:
    return _decide(request, name, form, who, approving=True)


@router.post("/policies/{name:path}/reject", name="reject")
def reject(request: Request, name: str, form: Form, who: Admin) -> Response:
    return _decide(request, name, form, who, approving=False)


@router.get("/runs", name="runs")
def list_runs(
    request: Request, who: Viewer, offset: Annotated[int, Query(ge=0, le=100_000)] = 0
) -> Response:
    found = catalog_of(request).runs(limit=offset + PAGE + 1)
    shown = found[offset : offset + PAGE]
    more = len(found) > offset + PAGE
    return page(
        request,
        "runs.html",
        title="Runs",
        who=who,
        runs=shown,
        offset=offset,
        next_offset=offset + PAGE if more else None,
        previous_offset=max(0, offset - PAGE) if offset else None,
    )


@router.get("/runs/{run_id}", name="run")
def show_run(request: Request, run_id: RunId, who: Viewer) -> Response:
    catalog = catalog_of(request)
    run = catalog.run(run_id)
    detail = run_detail(catalog.events(run_id))
    return page(request, "run.html", title=f"Run {run_id}", who=who, run=run, detail=detail)
