"""The web console in a real headless Chromium, served by ``haprotect serve``.

Debian's ``chromium`` (scripts/bootstrap installs it) driven by Playwright
for Python through its executable path: Playwright downloads no browser
here, and waits for each page by itself. The service runs as users run it,
from a config file, with a token and a pending policy in its catalog. The
browser logs in by keyboard, sees the dashboard, opens the pending policy
from it, approves it, and sees the dashboard protect the policy's data
sets. Each page visited is saved as a screenshot under the test's
directory (and, with ``HAPROTECT_SCREENSHOTS=DIR``, in DIR as well: how
docs/console/ was made).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.conftest import GOLDEN, require_component

from haprotect.catalog import Catalog, Role, VersionState
from haprotect.ports import free_ports

CHROMIUM = "/usr/bin/chromium"
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
#: Never within the test: nothing the approved policy schedules starts during it.
NEVER = "0 0 1 1 *"


def quiet_policy() -> str:
    """The shop's policy with schedules that do not fire while the test runs."""
    doc = yaml.safe_load((GOLDEN / "pacemaker-shop.policy.yaml").read_text(encoding="utf-8"))
    for item in doc["spec"]["items"]:
        item["schedule"] = NEVER
    return yaml.safe_dump(doc, sort_keys=False)


@pytest.fixture
def chromium() -> str:
    require_component(
        "Chromium", Path(CHROMIUM).exists(), "scripts/bootstrap installs Debian's chromium"
    )
    require_component(
        "Playwright for Python",
        importlib.util.find_spec("playwright") is not None,
        "scripts/bootstrap installs the dev extras",
    )
    return CHROMIUM


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``haprotect serve`` on a free port; its URL and an admin token's secret."""
    state = tmp_path / "state"
    (port,) = free_ports(1)
    config = tmp_path / "service.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(state),
                "listen": f"127.0.0.1:{port}",
                "drift": {"schedule": NEVER},
                "maintenance": {"prune": NEVER, "verify": NEVER},
                # one look at what is due, at start, before the approval: a job
                # that never ran is due at once, and this test runs no backup
                "tick_seconds": 3600,
                "log_level": "warning",
            }
        )
    )
    state.mkdir()
    with Catalog.open(f"sqlite:///{state / 'catalog.db'}") as catalog:
        secret = catalog.add_token("ada", Role.ADMIN).secret
        catalog.apply_policy("shop", quiet_policy(), by="generator")
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [HAPROTECT, "serve", "--config", str(config)], stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)
        yield url, secret
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_log_in_see_the_dashboard_and_approve_the_pending_policy(
    chromium: str, service: tuple[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    url, secret = service
    shots = tmp_path / "screenshots"
    shots.mkdir()
    keep = os.environ.get("HAPROTECT_SCREENSHOTS")

    def shot(page: Page, name: str, **options: Any) -> None:
        path = shots / f"{name}.png"
        page.screenshot(path=str(path), **options)
        if keep:
            shutil.copy(path, Path(keep) / path.name)

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.set_default_timeout(15_000)
            page.goto(f"{url}/")
            expect(page).to_have_url(f"{url}/console/login?then=/console/")
            expect(page.get_by_label("API token")).to_be_focused()
            shot(page, "login")
            page.keyboard.type(secret)
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{url}/console/")
            expect(page.get_by_role("heading", name="Waiting for review")).to_be_visible()
            expect(page.get_by_text("ada (admin)")).to_be_visible()
            shot(page, "dashboard-pending", full_page=True)

            page.get_by_role("link", name="Policy shop").click()
            expect(page).to_have_url(f"{url}/console/policies/shop")
            expect(page.get_by_text("Version 1 waits for review")).to_be_visible()
            expect(page.get_by_role("table", name="shop/pg_shop")).to_be_visible()
            shot(page, "policy-review")

            page.get_by_label("Comment on approving (optional)").fill("reviewed in the console")
            page.get_by_role("button", name="Approve version 1").click()
            expect(page.get_by_text("Approved: version 1 (by ada")).to_be_visible()
            expect(page.get_by_role("button", name="Approve version 1")).to_have_count(0)

            page.get_by_role("link", name="Dashboard").click()
            expect(page.get_by_role("table", name="shop on cluster shop")).to_be_visible()
            expect(page.get_by_role("rowheader", name="pg_shop")).to_be_visible()
            shot(page, "dashboard", full_page=True)

            page.set_viewport_size({"width": 390, "height": 800})
            expect(page.get_by_role("button", name="Log out")).to_be_visible()
            shot(page, "dashboard-phone", full_page=True)
        finally:
            browser.close()

    key = tmp_path / "state" / "console.key"
    assert key.stat().st_mode & 0o777 == 0o600, "the sessions' key is the service's user's alone"
    with Catalog.open(f"sqlite:///{tmp_path / 'state' / 'catalog.db'}") as catalog:
        version = catalog.version("shop", 1)
    assert (version.state, version.decided_by, version.comment) == (
        VersionState.APPROVED,
        "ada",
        "reviewed in the console",
    )
    assert sorted(p.name for p in shots.iterdir()) == [
        "dashboard-pending.png",
        "dashboard-phone.png",
        "dashboard.png",
        "login.png",
        "policy-review.png",
    ]
