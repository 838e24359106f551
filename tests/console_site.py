"""A console on a real SQLite catalog and a fake service, and a browser's way of using it.

``ConsoleControl`` is the API's fake service with a status of the test's
choosing. ``login`` does what a browser does: load the login page, send
its form with the page's CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from haprotect.api import ApiSettings, create_app
from haprotect.catalog import Catalog, Role
from tests.api_fakes import FakeControl, FakeStatus
from tests.conftest import GOLDEN

POLICY = (GOLDEN / "pacemaker-shop.policy.yaml").read_text(encoding="utf-8")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleControl(FakeControl):
    """The fake service, answering ``status`` with :attr:`shown`."""

    def __init__(self, catalog: Catalog, shown: FakeStatus | None = None) -> None:
        super().__init__(catalog)
        self.shown = shown or FakeStatus()

    def status(self) -> FakeStatus:
        if self.failure is not None:
            raise self.failure
        return self.shown


@dataclass
class Site:
    app: FastAPI
    catalog: Catalog
    control: ConsoleControl
    secrets: dict[Role, str]


def make_site(tmp_path: Path, settings: ApiSettings | None = None) -> Site:
    """A catalog with one token per role (named ``<role>-token``) and the app serving it."""
    catalog = Catalog.open(f"sqlite:///{tmp_path / 'catalog.db'}")
    control = ConsoleControl(catalog)
    secrets = {role: catalog.add_token(f"{role}-token", role).secret for role in Role}
    return Site(create_app(catalog, control, settings), catalog, control, secrets)


def client_of(site: Site) -> Iterator[TestClient]:
    with TestClient(site.app, base_url="http://testserver") as client:
        yield client
    site.catalog.close()


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html
    return found.group(1)


def login(client: TestClient, secret: str) -> str:
    """Log in as a browser does; the session's CSRF token (from the dashboard's forms)."""
    form = client.get("/console/login")
    assert form.status_code == 200
    sent = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "token": secret, "then": "/console/"},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    board = client.get("/console/")
    assert board.status_code == 200, board.text
    return csrf_of(board.text)
