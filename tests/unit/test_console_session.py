"""The console's login, sessions, CSRF protection and roles, on a real catalog."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.console_site import POLICY, Site, client_of, csrf_of, login, make_site

from haprotect.api.console.session import COOKIE, KEY_BYTES, load_key
from haprotect.catalog import Role, VersionState
from haprotect.errors import InputError


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    yield from client_of(site)


def pending_shop(site: Site) -> int:
    return site.catalog.apply_policy("shop", POLICY, by="test").version.number


def test_a_page_without_a_session_leads_to_the_login_and_back_after_it(
    client: TestClient, site: Site
) -> None:
    answer = client.get("/console/runs?offset=0", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?then=/console/runs%3Foffset%3D0"
    form = client.get(answer.headers["location"])
    assert 'name="then" value="/console/runs?offset=0"' in form.text
    sent = client.post(
        "/console/login",
        data={
            "csrf": csrf_of(form.text),
            "token": site.secrets[Role.VIEWER],
            "then": "/console/runs?offset=0",
        },
        follow_redirects=False,
    )
    assert (sent.status_code, sent.headers["location"]) == (303, "/console/runs?offset=0")
    assert client.get("/console/runs").status_code == 200
    assert client.get("/", follow_redirects=False).headers["location"] == "/console/"


def test_after_login_the_browser_goes_only_to_a_console_page(
    client: TestClient, site: Site
) -> None:
    for then in ("https://elsewhere.example/", "//elsewhere.example/console/", "/api/v1/runs"):
        form = client.get("/console/login")
        sent = client.post(
            "/console/login",
            data={"csrf": csrf_of(form.text), "token": site.secrets[Role.VIEWER], "then": then},
            follow_redirects=False,
        )
        assert sent.headers["location"] == "/console/", then
        client.cookies.clear()


def test_the_cookie_is_signed_httponly_samesite_strict_and_secure_over_tls(
    tmp_path: Path,
) -> None:
    for scheme, secure in (("http", False), ("https", True)):
        site = make_site(tmp_path / scheme)
        with TestClient(site.app, base_url=f"{scheme}://testserver") as client:
            form = client.get("/console/login")
            sent = client.post(
                "/console/login",
                data={"csrf": csrf_of(form.text), "token": site.secrets[Role.ADMIN]},
                follow_redirects=False,
            )
            cookie = sent.headers["set-cookie"]
            flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
            assert {"httponly", "samesite", "path", "max-age"} <= flags
            assert "samesite=strict" in cookie.lower()
            assert ("secure" in flags) is secure, cookie
            assert site.secrets[Role.ADMIN] not in cookie
            assert client.get("/console/").status_code == 200
        site.catalog.close()


def test_an_unknown_token_is_refused_and_makes_no_session(client: TestClient) -> None:
    form = client.get("/console/login")
    sent = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "token": "hapt_not-a-token"},
        follow_redirects=False,
    )
    assert sent.status_code == 401
    assert "The token is unknown or revoked." in sent.text
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_or_one_signed_with_another_key_is_no_session(
    client: TestClient, site: Site, tmp_path: Path
) -> None:
    login(client, site.secrets[Role.ADMIN])
    good = client.cookies[COOKIE]
    payload, stamp, signature = good.split(".")
    forged = f"{payload}.{stamp}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    client.cookies.set(COOKIE, forged, path="/console/")
    assert client.get("/console/", follow_redirects=False).status_code == 303

    other = make_site(tmp_path / "other")
    with TestClient(other.app) as stranger:
        login(stranger, other.secrets[Role.ADMIN])
        theirs = stranger.cookies[COOKIE]
    other.catalog.close()
    client.cookies.clear()
    client.cookies.set(COOKIE, theirs, path="/console/")
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_logging_out_ends_the_session_even_for_a_kept_copy_of_its_cookie(
    client: TestClient, site: Site
) -> None:
    csrf = login(client, site.secrets[Role.VIEWER])
    kept = client.cookies[COOKIE]
    out = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/console/login")
    assert client.get("/console/", follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, kept, path="/console/")
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_its_sessions(client: TestClient, site: Site) -> None:
    login(client, site.secrets[Role.ADMIN])
    site.catalog.revoke_token("admin-token")
    answer = client.get("/console/policies", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login")


def test_a_post_without_this_sessions_csrf_token_is_refused(
    tmp_path: Path, client: TestClient, site: Site
) -> None:
    number = pending_shop(site)
    other = make_site(tmp_path / "other")
    with TestClient(other.app) as stranger:
        theirs = login(stranger, other.secrets[Role.ADMIN])
    other.catalog.close()
    login(client, site.secrets[Role.ADMIN])
    for form in (
        {"number": str(number)},
        {"number": str(number), "csrf": ""},
        {"number": str(number), "csrf": "forged"},
        {"number": str(number), "csrf": theirs},
    ):
        answer = client.post("/console/policies/shop/approve", data=form)
        assert answer.status_code == 403, form
        assert "CSRF token is missing or does not match" in answer.text
    assert site.catalog.version("shop", number).state is VersionState.PENDING
    login_form = client.post("/console/login", data={"token": site.secrets[Role.ADMIN]})
    assert login_form.status_code == 403


def test_a_post_that_is_not_a_form_is_refused(client: TestClient, site: Site) -> None:
    csrf = login(client, site.secrets[Role.ADMIN])
    pending_shop(site)
    answer = client.post("/console/policies/shop/approve", json={"csrf": csrf, "number": 1})
    assert answer.status_code == 415
    assert site.catalog.version("shop", 1).state is VersionState.PENDING


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_below_admin_no_approve_button_shows_and_a_forged_approval_is_403(
    client: TestClient, site: Site, role: Role
) -> None:
    number = pending_shop(site)
    csrf = login(client, site.secrets[role])
    review = client.get("/console/policies/shop")
    assert review.status_code == 200
    assert "Version 1 waits for review" in review.text
    assert "/approve" not in review.text and "/reject" not in review.text
    assert "Only an administrator approves" in review.text
    for verb in ("approve", "reject"):
        forged = client.post(
            f"/console/policies/shop/{verb}", data={"csrf": csrf, "number": str(number)}
        )
        assert forged.status_code == 403
        assert f"has the role {role}; this needs admin" in forged.text
    assert site.catalog.version("shop", number).state is VersionState.PENDING


def test_an_admin_approves_the_version_reviewed(client: TestClient, site: Site) -> None:
    number = pending_shop(site)
    csrf = login(client, site.secrets[Role.ADMIN])
    review = client.get("/console/policies/shop")
    assert 'action="/console/policies/shop/approve"' in review.text
    done = client.post(
        "/console/policies/shop/approve",
        data={"csrf": csrf, "number": str(number), "comment": "looks right"},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, "/console/policies/shop")
    version = site.catalog.version("shop", number)
    assert (version.state, version.decided_by, version.comment) == (
        VersionState.APPROVED,
        "admin-token",
        "looks right",
    )
    assert "Approved: version 1 (by admin-token" in client.get("/console/policies/shop").text


def test_the_key_is_made_once_readable_by_its_owner_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "console.key"
    first = load_key(path)
    assert len(first) == KEY_BYTES
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_key(path) == first
    path.write_bytes(b"short")
    with pytest.raises(InputError, match="shorter than 32 bytes"):
        load_key(path)
