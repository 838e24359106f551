"""Credentials inside values never leave haprotect: not in any output, file or repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.web_site import write_web_site
from typer.testing import CliRunner

from haprotect.cli.main import app
from haprotect.redact import REDACTED, redact_text, redact_value
from haprotect.repo import Repository
from haprotect.sources.pacemaker.cib import read_config
from haprotect.sources.pacemaker.xml import parse_xml
from haprotect.storage.local import LocalStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
R = REDACTED


@pytest.mark.parametrize(
    ("value", "redacted"),
    [
        ("username=svc,password=Pw1,vers=3.0", f"username=svc,password={R},vers=3.0"),
        ("password=Pw1;user=x", f"password={R};user=x"),
        ("--user=svc --password=Pw1 --verbose", f"--user=svc --password={R} --verbose"),
        ("PGPASSWORD=Pw1 pg_basebackup -h db", f"PGPASSWORD={R} pg_basebackup -h db"),
        ("https://h/run?token=Tk1&job=1", f"https://h/run?token={R}&job=1"),
        ("secret=Sc1", f"secret={R}"),
        ("api_key = Ak1", f"api_key = {R}"),
        ("postgresql://u:Pw1@h:5432/db", f"postgresql://u:{R}@h:5432/db"),
        ("https://admin:Pw1@h:8443/x", f"https://admin:{R}@h:8443/x"),
        ("mongodb://u:Pw1@h1,h2/db", f"mongodb://u:{R}@h1,h2/db"),
        # an "@" in the password: the authority's user part ends at its last "@"
        ("postgresql://u:p@ss@h:5432/db", f"postgresql://u:{R}@h:5432/db"),
        ("gcomm://sst:a@b@c@n1,n2 x@y", f"gcomm://sst:{R}@n1,n2 x@y"),
        (
            "host=db1 user=backup password='a b\\'c' dbname=shop",
            f"host=db1 user=backup password={R} dbname=shop",
        ),
        ('host=db1 password="Pw1" dbname=shop', f"host=db1 password={R} dbname=shop"),
        (
            "s3://b/x?endpoint=http://ak:Sk1@127.0.0.1:8333",
            f"s3://b/x?endpoint=http://ak:{R}@127.0.0.1:8333",
        ),
        ("Server=db;UID=sa;PWD=Pw1;Database=shop", f"Server=db;UID=sa;PWD={R};Database=shop"),
        ("user=svc,db_pass=Pw1", f"user=svc,db_pass={R}"),
        ("credentials=Cr1", f"credentials={R}"),
    ],
)
def test_credentials_inside_values_are_redacted_and_the_rest_kept(
    value: str, redacted: str
) -> None:
    assert redact_text(value) == redacted
    assert redact_value("options", value) == redacted
    assert redact_text(redacted) == redacted


@pytest.mark.parametrize(
    "value",
    [
        "noatime,nodiratime",
        "/srv/pg",
        "user@host:/path",
        "http://h:8080/a@b",
        "https://u@h/x",
        "a=b",
        "mode=passthrough,bypass=1",
    ],
)
def test_values_without_credentials_are_kept(value: str) -> None:
    assert redact_text(value) == value


def test_secret_names_redact_the_whole_value() -> None:
    assert redact_value("auth_token", "abc") == R
    assert redact_value("check_passwd", "abc") == R


SECRETS = (
    "Dav-s3cret",
    "Cifs-s3cret",
    "Pq s3cret",
    "Pg-s3cret",
    "Env-s3cret",
    "Arg-s3cret",
    "Tok-s3cret",
    "Gal-s3cret",
    "Chk-s3cret",
    "Inv-s3cret",
    "Pol-s3cret",
)

TOPOLOGY = """\
apiVersion: haprotect/v1
kind: Topology
clusters:
  - name: web
    nodes: [web1]
    datasets:
      - id: uploads
        kind: filesystem
        location:
          directory: {uploads}
          device: "https://svc:Dav-s3cret@dav.example/share"
          options: "username=svc,password=Cifs-s3cret,vers=3.0"
          conninfo: "host=db1 user=backup password='Pq s3cret' dbname=shop"
          dsn: "postgresql://app:Pg-s3cret@db1/shop"
          env: "PGPASSWORD=Env-s3cret;PGUSER=backup"
          args: "--user=backup --password=Arg-s3cret"
          hook: "https://hooks.example/run?token=Tok-s3cret&job=1"
        replication: shared
        primary: web1
        ha: true
    applications:
      - name: site
        tiers:
          - {{name: web, resources: [nginx], datasets: [uploads]}}
"""

KEPT = (
    f"https://svc:{R}@dav.example/share",
    f"username=svc,password={R},vers=3.0",
    f"host=db1 user=backup password={R} dbname=shop",
    f"postgresql://app:{R}@db1/shop",
    f"PGPASSWORD={R};PGUSER=backup",
    f"--user=backup --password={R}",
    f"https://hooks.example/run?token={R}&job=1",
)


class Outputs:
    """Runs commands and keeps everything they print."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.texts: list[str] = []
        self.env = {"HAPROTECT_PASSWORD": "pw", "HAPROTECT_STAGING": str(tmp / "staging")}

    def run(self, *args: str) -> str:
        result = CliRunner().invoke(app, list(args), env=self.env)
        assert result.exit_code == 0, result.output
        self.texts += [result.stdout, result.stderr]
        return result.stdout

    def assert_no_secret(self) -> None:
        for text in self.texts:
            for secret in SECRETS:
                assert secret not in text


def files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


def test_a_topology_files_credentials_reach_no_output_file_or_repository(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "a.txt").write_text("data")
    topology = tmp_path / "web.yaml"
    topology.write_text(TOPOLOGY.format(uploads=uploads))
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"where: file://{tmp_path}/repo\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "nodes:\n  web1:\n    local: true\n    locations:\n"
        "      uploads: {extra: 'user=x password=Inv-s3cret'}\n"
    )
    out = Outputs(tmp_path)
    url = f"file://{topology}"
    found = json.loads(out.run("discover", url, "--json"))
    location = found["clusters"][0]["datasets"][0]["location"]
    assert [
        location[k] for k in ("device", "options", "conninfo", "dsn", "env", "args", "hook")
    ] == list(KEPT)
    assert location["directory"] == str(uploads)
    out.run("discover", url)
    policy = tmp_path / "policy.yaml"
    out.run("plan", url, "--rules", str(rules), "-o", str(policy))
    out.texts.append(policy.read_text())
    assert all(kept in policy.read_text() for kept in KEPT)
    out.run("plan", url, "--rules", str(rules), "--json")
    out.run("explain", str(policy))
    plan = out.run("backup", str(policy), "--inventory", str(inventory), "--dry-run")
    assert f"extra=user=x password={R}" in plan
    out.run("backup", str(policy), "--inventory", str(inventory), "--dry-run", "--json")
    out.run("backup", str(policy), "--inventory", str(inventory), "--init", "--json")
    out.run("backup", str(policy), "--inventory", str(inventory))
    out.run("snapshots", "--repo", f"file://{tmp_path}/repo", "--json")
    out.run("snapshots", "--repo", f"file://{tmp_path}/repo")
    repo = Repository.open(LocalStore.from_url(f"file://{tmp_path}/repo"), "pw")
    restored = tmp_path / "restored"
    for snapshot in repo.snapshots():
        out.texts.append(json.dumps(snapshot.metadata) + " ".join(snapshot.paths + snapshot.tags))
        repo.restore(snapshot.id, restored / snapshot.id)
    out.texts.append(files_text(restored))
    assert f"password={R},vers=3.0" in out.texts[-1]  # the topology the sets were planned from
    hand_written = tmp_path / "edited.yaml"
    hand_written.write_text(
        policy.read_text().replace(f"password={R},vers", "password=Pol-s3cret,vers")
    )
    out.run("validate", str(hand_written))
    out.run("explain", str(hand_written), "--json")
    out.run("backup", str(hand_written), "--dry-run", "--json")
    out.assert_no_secret()


def test_a_cibs_credentials_reach_no_output(tmp_path: Path) -> None:
    cib = FIXTURES / "pacemaker" / "secrets-cluster.xml"
    config = read_config(parse_xml(cib.read_bytes(), cib.name), cib.name)
    params = config.primitives["fs_share"].params
    assert params["options"] == f"username=svc,password={R},vers=3.0"
    assert config.primitives["db"].params["check_passwd"] == R
    out = Outputs(tmp_path)
    url = f"pacemaker+file://{cib}"
    found = json.loads(out.run("discover", "--no-cli", "--json", url))
    fs, db = found["clusters"][0]["datasets"]
    assert fs["location"]["device"] == f"https://backup:{R}@dav.example/share"
    assert db["location"]["wsrep_cluster_address"] == f"gcomm://sst:{R}@n1,n2"
    out.run("discover", "--no-cli", url)
    policy = tmp_path / "policy.yaml"
    out.run("plan", "--no-cli", url, "-o", str(policy))
    out.texts.append(policy.read_text())
    out.run("plan", "--no-cli", url, "--json")
    out.run("explain", str(policy))
    out.run("backup", str(policy), "--dry-run", "--no-cli")
    out.run("backup", str(policy), "--dry-run", "--no-cli", "--json")
    out.assert_no_secret()


QUIESCER_SECRETS = ("Gate-s3cret", "Tok-s3cret", "Cmd-s3cret", "Num-s3cret")

INVENTORY_WITH_QUIESCERS = """\
nodes:
  web1: {{local: true}}
quiesce:
  site/web:
  - kind: command
    options:
      pre: [sh, -c, "echo password=Cmd-s3cret > {seen}; echo password=Cmd-s3cret"]
      post: ["true"]
  - kind: http-gate
    timeout_seconds: 2
    on_error: continue
    options: {{admin_url: "http://adm:Gate-s3cret@127.0.0.1:{port}/", token: Tok-s3cret}}
"""


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_quiescer_options_are_used_as_written_and_shown_redacted(tmp_path: Path) -> None:
    """The quiescers get the real options; the plan, the run's events, its messages
    and the set's metadata show them redacted."""
    topology, rules = write_web_site(tmp_path)
    seen = tmp_path / "seen"
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY_WITH_QUIESCERS.format(seen=seen, port=_closed_port()))
    policy = tmp_path / "policy.yaml"
    out = Outputs(tmp_path)
    out.run("plan", f"file://{topology}", "--rules", str(rules), "-o", str(policy))
    plan = json.loads(
        out.run("backup", str(policy), "--inventory", str(inventory), "--dry-run", "--json")
    )
    command, gate = plan["sets"][0]["tiers"][0]["quiesce"]
    assert command["options"]["pre"][2].startswith(f"echo password={R} > ")
    assert gate["options"]["admin_url"].startswith(f"http://adm:{R}@127.0.0.1:")
    assert gate["options"]["token"] == R
    out.run("backup", str(policy), "--inventory", str(inventory), "--dry-run")
    for args in (["--init", "--json"], []):
        result = CliRunner().invoke(
            app, ["backup", str(policy), "--inventory", str(inventory), *args], env=out.env
        )
        assert result.exit_code == 10, result.output  # the gate cannot be reached
        out.texts += [result.stdout, result.stderr]
        assert f"http://adm:{R}@127.0.0.1:" in result.stdout + result.stderr
    assert seen.read_text() == "password=Cmd-s3cret\n"  # the command ran with its real options
    repo = Repository.open(LocalStore.from_url(f"file://{tmp_path}/repo"), "pw")
    metadata = [json.dumps(s.metadata) for s in repo.snapshots()]
    assert any(f"http://adm:{R}@" in m for m in metadata)
    assert any(f"password={R}" in m for m in metadata)  # the command's output, in the window
    out.texts += metadata
    for text in out.texts:
        for secret in QUIESCER_SECRETS:
            assert secret not in text


def test_a_policy_diff_shows_quiescer_options_redacted(tmp_path: Path) -> None:
    topology, _ = write_web_site(tmp_path)
    old = tmp_path / "old.yaml"
    out = Outputs(tmp_path)
    out.run("plan", f"file://{topology}", "-o", str(old))
    new = tmp_path / "new.yaml"
    new.write_text(
        old.read_text().replace(
            "      depends_on: []\n",
            "      depends_on: []\n      quiesce:\n      - kind: http-gate\n        options:\n"
            "          admin_url: http://adm:Gate-s3cret@gate:8079/\n"
            "          token: Tok-s3cret\n          pin_token: 12345\n",
            1,
        )
    )
    shown = []
    for args in ([], ["--json"]):
        result = CliRunner().invoke(app, ["diff", str(old), str(new), *args])
        assert result.exit_code == 1, result.output  # the policies differ
        shown.append(result.stdout + result.stderr)
    assert f"admin_url=http://adm:{R}@gate:8079/, pin_token={R}, token={R})" in shown[0]
    for text in shown:
        assert "Gate-s3cret" not in text and "Tok-s3cret" not in text and "12345" not in text


def test_plain_data_redacts_mapping_values_by_key_not_field_names() -> None:
    from dataclasses import dataclass

    from haprotect.engine.events import to_plain

    @dataclass(frozen=True)
    class Shown:
        path_key: str
        options: dict[str, object]

    shown = Shown("pgdata", {"token": 12345, "pre": ["password=x", "pgdata"], "on": True})
    assert to_plain(shown) == {
        "path_key": "pgdata",
        "options": {"token": R, "pre": [f"password={R}", "pgdata"], "on": True},
    }
