"""The protection service on the lab: the policy carried out by itself.

``haprotect serve`` runs as users run it (the console script, a config file,
the catalog made by ``haprotect policy apply``/``approve`` and ``token
add``) against the real lab, a local repository and a copy target on
SeaweedFS, with a webhook receiver and an SMTP server on loopback. The lab's
policy is changed to run every minute, keep the last set and make two
copies. Then, in order: sets are taken by themselves and thinned to the
newest in both repositories; the copy restores byte for byte; /metrics tells
the last success; an induced failure reaches both receivers; a kill -9
mid-run leaves the tiers serving, the run interrupted on restart, and the
next run complete. The same is then done with the catalog on PostgreSQL.
"""

from __future__ import annotations

import copy
import filecmp
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.conftest import LabEnv, lab_env
from tests.receivers import SmtpReceiver, WebhookReceiver

from haprotect.catalog import Catalog
from haprotect.catalog.records import RunStatus
from haprotect.engine import list_sets
from haprotect.model.policy import Policy, Retention
from haprotect.policy.io import dump_policy, load_policy
from haprotect.ports import free_ports
from haprotect.repo import open_repository
from haprotect.storage import open_store
from haprotect.testing.seaweedfs import SeaweedFS

PASSWORD = "pw"
WRONG = "not the passphrase"
#: Four minutes for two sets, as a user would wait for an every-minute schedule.
TWO_SETS = 240.0
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))


def every_minute(policy: Policy, repository: str) -> Policy:
    items = tuple(
        replace(
            i, schedule="* * * * *", retention=Retention(keep_last=1), copies=2, where=repository
        )
        for i in policy.items
    )
    return replace(policy, items=items, repository=repository)


@dataclass
class Site:
    """The lab, the service's files, its receivers, and the running service."""

    env: LabEnv
    root: Path
    config: Path
    catalog: str
    local: str
    offsite: str
    password_file: Path
    hook: WebhookReceiver
    smtp: SmtpReceiver
    url: str = ""
    token: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def policy_name(self) -> str:
        return self.env.policy.metadata.name

    def haprotect(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HAPROTECT, *args, "--catalog", self.catalog],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        log = (self.root / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [HAPROTECT, "serve", "--config", str(self.config)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.log()
            time.sleep(0.5)
        raise AssertionError(f"the service did not answer: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=180)
        self.process = None

    def log(self) -> str:
        return (self.root / "serve.log").read_text(errors="replace")[-4000:]

    def get(self, path: str, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = httpx.get(f"{self.url}{path}", headers=headers, params=params, timeout=10)
        answer.raise_for_status()
        return answer.json() if "json" in answer.headers.get("content-type", "") else answer.text

    def runs(self) -> list[dict[str, Any]]:
        page = self.get("/api/v1/runs", limit=200)
        return list(page["items"])

    def backups(self, status: str | None = None) -> list[dict[str, Any]]:
        runs = [r for r in self.runs() if r["job"].startswith("group:")]
        return [r for r in runs if status is None or r["status"] == status]

    def wait(self, what: str, ready: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = ready()
            if found:
                return found
            assert self.process is None or self.process.poll() is None, self.log()
            time.sleep(2)
        raise AssertionError(f"{what} within {timeout:.0f} s; runs: {self.runs()}\n{self.log()}")

    def completed_sets(self) -> list[str]:
        """The sets of the completed backup runs, newest first, from the catalog itself."""
        with Catalog.open(self.catalog) as catalog:
            runs = catalog.runs(statuses=[RunStatus.COMPLETED], limit=1000)
        return [r.set_id for r in runs if r.job.startswith("group:") and r.set_id]

    def sets(self, url: str) -> dict[str, bool]:
        """Each set in the repository at ``url``: its id and whether it is complete."""
        repo = open_repository(open_store(url), PASSWORD)
        return {s.id: s.complete for s in list_sets(repo)}


def make_site(
    env: LabEnv, seaweedfs: SeaweedFS, hook: WebhookReceiver, smtp: SmtpReceiver, catalog: str
) -> Site:
    root = env.root
    local = f"file://{root}/service-repo"
    offsite = seaweedfs.url(f"service-{time.time_ns()}")
    password_file = root / "repo.pass"
    password_file.write_text(PASSWORD + "\n")
    (port,) = free_ports(1)
    config = root / "service.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(root / "state"),
                "catalog": catalog,
                "listen": f"127.0.0.1:{port}",
                "inventory": str(env.lab.inventory_path),
                "staging": str(root / "staging"),
                "repositories": [
                    {"name": "local", "url": local, "password_file": str(password_file)},
                    {"name": "offsite", "url": offsite, "password_file": str(password_file)},
                ],
                "copy_targets": ["offsite"],
                "limits": {"concurrent": 2, "per_repository": 1, "per_node": 2},
                "retry": {"attempts": 1},
                "tick_seconds": 1,
                "drift": {"schedule": "* * * * *"},
                "notifications": {
                    "targets": [
                        {"type": "webhook", "url": hook.url, "kinds": ["failure"]},
                        {
                            "type": "email",
                            "host": "127.0.0.1",
                            "port": smtp.port,
                            "security": "none",
                            "sender": "haprotect@localhost",
                            "to": ["backup-admins@localhost"],
                            "kinds": ["failure"],
                        },
                    ]
                },
            }
        )
    )
    # Generated as users do: `haprotect plan` with a rules file naming the repository, which
    # is also what a drift job regenerates the policy with.
    rules = root / "rules.yaml"
    rules.write_text(f"where: {local}\n")
    policy_file = root / "service-policy.yaml"
    source = f"pacemaker+file://{env.lab.cib_path}"
    planned = subprocess.run(
        [HAPROTECT, "plan", source, "--rules", str(rules), "-o", str(policy_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    policy_file.write_text(dump_policy(every_minute(load_policy(policy_file), local)))
    site = Site(env, root, config, catalog, local, offsite, password_file, hook, smtp)
    site.url = f"http://127.0.0.1:{port}"
    applied = site.haprotect("policy", "apply", str(policy_file), "--json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["state"] == "pending"
    approved = site.haprotect("policy", "approve", site.policy_name)
    assert approved.returncode == 0, approved.stderr
    made = site.haprotect("token", "add", "tester", "--role", "admin", "--json")
    assert made.returncode == 0, made.stderr
    site.token = json.loads(made.stdout)["secret"]
    return site


@pytest.fixture(scope="module")
def site(seaweedfs: SeaweedFS) -> Iterator[Site]:
    with (
        lab_env("hp-svc-") as env,
        WebhookReceiver().running() as hook,
        SmtpReceiver().running() as smtp,
    ):
        made = make_site(env, seaweedfs, hook, smtp, f"sqlite:///{env.root}/catalog.db")
        made.start()
        try:
            yield made
        finally:
            made.stop()


def test_sets_are_taken_by_themselves_and_only_the_newest_is_kept_in_each_repository(
    site: Site,
) -> None:
    site.wait("two complete backup runs", lambda: len(site.backups("completed")) >= 2, TWO_SETS)
    site.stop()
    assert_only_the_newest_is_kept(site, site.completed_sets())
    site.start()


def assert_only_the_newest_is_kept(site: Site, completed: list[str]) -> None:
    """The newest completed run's set is in both repositories; no older run's set is left."""
    newest, older = completed[0], set(completed[1:])
    assert older, "one completed run only"
    for url in (site.local, site.offsite):
        sets = site.sets(url)
        assert sets.get(newest) is True, f"{url}: the newest set {newest} is missing: {sets}"
        assert not older & set(sets), f"{url}: retention left {older & set(sets)}"


def test_the_copy_restores_byte_for_byte(site: Site, tmp_path: Path) -> None:
    assert_the_copy_restores_byte_for_byte(site, tmp_path)


def assert_the_copy_restores_byte_for_byte(site: Site, tmp_path: Path) -> None:
    newest = site.backups("completed")[0]["set_id"]
    shared = site.env.lab.shared_dir
    tier, dataset = next(
        (t.name, d)
        for g in site.env.policy.groups
        for t in g.tiers
        for d in t.datasets
        if site.env.policy.item(d).what.location.get("directory") == str(shared)
    )
    target = tmp_path / "restored"
    restored = subprocess.run(
        [HAPROTECT, "restore", newest, "--repo", site.offsite, "--tier", tier, "--to",
         str(target), "--yes", "--password-file", str(site.password_file)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    copy = target / tier / dataset
    assert copy.is_dir(), sorted(str(p.relative_to(target)) for p in target.rglob("*"))[:20]
    compared = filecmp.dircmp(shared, copy)
    assert _same_tree(compared), f"differs: {compared.diff_files} {compared.left_only}"


def _same_tree(compared: filecmp.dircmp[str]) -> bool:
    if compared.diff_files or compared.left_only or compared.right_only or compared.funny_files:
        return False
    for name in compared.common_files:
        left = Path(compared.left) / name
        right = Path(compared.right) / name
        if left.read_bytes() != right.read_bytes():
            return False
    return all(_same_tree(sub) for sub in compared.subdirs.values())


def test_metrics_show_the_last_success(site: Site) -> None:
    assert_metrics_show_the_last_success(site)


def assert_metrics_show_the_last_success(site: Site) -> None:
    newest = site.backups("completed")[0]
    families = {f.name: f for f in text_string_to_metric_families(site.get("/metrics"))}
    last = families["haprotect_last_complete_set_timestamp_seconds"].samples
    assert last, "no last complete set in /metrics"
    assert {s.labels["cluster"] for s in last} == set(site.env.policy.metadata.clusters)
    assert min(s.value for s in last) > time.time() - 600
    completed = [
        s.value
        for s in families["haprotect_runs"].samples
        if s.name == "haprotect_runs_total" and s.labels["outcome"] == "completed"
    ]
    assert completed and max(completed) >= 2, newest


def test_an_induced_failure_reaches_the_webhook_and_the_mailbox(site: Site) -> None:
    assert_an_induced_failure_is_notified(site)


def assert_an_induced_failure_is_notified(site: Site) -> None:
    failed_before = len(site.backups("failed"))
    site.password_file.write_text(WRONG + "\n")
    try:
        site.wait("a failed backup run", lambda: len(site.backups("failed")) > failed_before, 180)
    finally:
        site.password_file.write_text(PASSWORD + "\n")
    site.wait("the webhook's notification", lambda: site.hook.requests, 60)
    payload = site.hook.requests[-1].json()
    assert payload["kind"] == "failure" and payload["fields"]["job"].startswith("group:")
    site.wait("the e-mail", lambda: site.smtp.messages, 60)
    message = site.smtp.messages[-1]
    assert "backup of group:" in str(message["subject"])
    assert site.smtp.envelopes[-1][1] == ["backup-admins@localhost"]


def test_kill_9_mid_run_leaves_tiers_serving_an_interrupted_run_and_a_next_complete_one(
    site: Site,
) -> None:
    def holding() -> dict[str, Any] | None:
        for run in site.backups("running"):
            kinds = {e["kind"] for e in site.get(f"/api/v1/runs/{run['id']}/events")}
            if "tier_started" in kinds or "set_started" in kinds:
                return run
        return None

    run = site.wait("a run in progress", holding, 180)
    completed_before = {r["id"] for r in site.backups("completed")}
    site.stop(signal.SIGKILL)
    deadline = time.monotonic() + 130
    while True:
        try:
            with urllib.request.urlopen(f"{site.env.lab.web_url}/api/health", timeout=5) as answer:
                if answer.status < 500:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the web tier did not serve within its lease"
        time.sleep(1)
    site.start()
    interrupted = site.get(f"/api/v1/runs/{run['id']}")
    assert interrupted["status"] == "interrupted", interrupted
    site.wait(
        "a complete run after the restart",
        lambda: {r["id"] for r in site.backups("completed")} - completed_before,
        TWO_SETS,
    )


def add_a_filesystem(site: Site) -> str:
    """A Filesystem resource running on the shared storage's node, added to the lab's CIB."""
    from lxml import etree

    new = site.env.lab.root / "new-storage"
    (new / "sub").mkdir(parents=True)
    (new / "sub" / "ledger").write_bytes(os.urandom(4096))
    cib = etree.parse(str(site.env.lab.cib_path))
    primitive = etree.SubElement(
        cib.find(".//resources"),
        "primitive",
        {"id": "fs_ledger", "class": "ocf", "provider": "heartbeat", "type": "Filesystem"},
    )
    attributes = etree.SubElement(primitive, "instance_attributes", id="fs_ledger-attributes")
    for name, value in (("device", str(new)), ("directory", str(new)), ("fstype", "none"),
                        ("options", "bind")):  # fmt: skip
        etree.SubElement(attributes, "nvpair", id=f"fs_ledger-{name}", name=name, value=value)
    running = [
        r
        for r in cib.iterfind(".//lrm_resource[@type='Filesystem']")
        if any(op.get("operation") == "start" and op.get("rc-code") == "0" for op in r)
    ]
    assert running, "no running Filesystem in the lab's status"
    history = copy.deepcopy(running[0])
    history.set("id", "fs_ledger")
    for op in history:
        op.set("id", op.get("id", "").replace(running[0].get("id", ""), "fs_ledger"))
    running[0].getparent().append(history)
    cib.write(str(site.env.lab.cib_path), xml_declaration=False, encoding="utf-8")
    return "fs_ledger"


def test_a_filesystem_added_to_the_cib_is_drift_and_its_approval_makes_it_run(
    site: Site,
) -> None:
    dataset = add_a_filesystem(site)
    drift = site.wait(
        "a drift alert",
        lambda: [a for a in site.get("/api/v1/alerts") if a["kind"] == "drift"],
        240,
    )
    assert dataset in drift[0]["text"]
    versions = site.get(f"/api/v1/policies/{site.policy_name}/versions")
    pending = versions[-1]
    assert pending["state"] == "pending"
    text = site.get(f"/api/v1/policies/{site.policy_name}/versions/{pending['number']}/yaml")
    assert f"dataset: {dataset}" in str(text)
    answer = httpx.post(
        f"{site.url}/api/v1/policies/{site.policy_name}/approve",
        headers={"Authorization": f"Bearer {site.token}"},
        json={"number": pending["number"]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    site.wait(
        f"a completed run that includes {dataset}",
        lambda: [r for r in site.runs() if dataset in r["job"] and r["status"] == "completed"],
        TWO_SETS,
    )


def test_the_same_with_the_catalog_on_postgresql(
    seaweedfs: SeaweedFS, postgres: Any, tmp_path: Path
) -> None:
    with (
        lab_env("hp-svc-pg-") as env,
        WebhookReceiver().running() as hook,
        SmtpReceiver().running() as smtp,
    ):
        url = postgres.create_database("service")
        site = make_site(env, seaweedfs, hook, smtp, url)
        site.start()
        try:
            site.wait(
                "two complete backup runs", lambda: len(site.backups("completed")) >= 2, TWO_SETS
            )
            site.stop()
            assert_only_the_newest_is_kept(site, site.completed_sets())
            site.start()
            assert_the_copy_restores_byte_for_byte(site, tmp_path)
            assert_metrics_show_the_last_success(site)
            assert_an_induced_failure_is_notified(site)
        finally:
            site.stop()
