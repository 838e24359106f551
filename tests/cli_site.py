"""A small site for CLI tests: one application (storage, frontend) on a local node.

Two directories, a topology file describing them, inventories (the node on
this machine, or elsewhere), the policy ``haprotect plan`` makes of them,
and an empty repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner, Result

from haprotect.cli.main import app
from haprotect.engine import list_sets
from haprotect.repo import KdfParams, Repository
from haprotect.storage.local import LocalStore

PASSWORD = "secret"


@dataclass
class Site:
    """Two directories of one application on a local node, its policy, a repository."""

    root: Path

    @property
    def repo(self) -> str:
        return str(self.root / "repo")

    def path(self, name: str) -> str:
        return str(self.root / name)


TOPOLOGY = """\
apiVersion: haprotect/v1
kind: Topology
clusters:
  - name: c1
    manager: file
    nodes: [{{name: node1}}]
    datasets:
      - {{id: data, kind: filesystem, location: {{directory: {root}/data}},
         replication: shared, primary: node1, ha: true}}
      - {{id: static, kind: filesystem, location: {{directory: {root}/static}},
         replication: shared, primary: node1, ha: true}}
    applications:
      - name: site
        tiers:
          - {{name: storage, datasets: [data]}}
          - {{name: frontend, datasets: [static], depends_on: [storage]}}
"""


def invoke(*args: str, password: str = PASSWORD, stdin: str | None = None) -> Result:
    env = {"HAPROTECT_PASSWORD": password, "HAPROTECT_REPOSITORY": "", "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env, input=stdin, catch_exceptions=False)


def make_site(tmp_path: Path) -> Site:
    """The site under ``tmp_path``, its policy planned and its repository made."""
    made = Site(tmp_path)
    for name in ("data", "static"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "file").write_text(f"{name}\n")
    (tmp_path / "topology.yaml").write_text(TOPOLOGY.format(root=tmp_path))
    (tmp_path / "inventory.yaml").write_text("nodes:\n  node1: {host: 127.0.0.1, local: true}\n")
    (tmp_path / "remote.yaml").write_text("nodes:\n  node1: {host: 10.0.0.1, local: false}\n")
    Repository.init(LocalStore(made.repo), PASSWORD, kdf=KdfParams(n=1 << 10))
    planned = invoke("plan", f"file://{tmp_path}/topology.yaml", "-o", made.path("policy.yaml"))
    assert planned.exit_code == 0, planned.output
    return made


def a_set(site: Site) -> str:
    """Back up the whole site with ``backup``; the set's id."""
    done = invoke(
        "backup", site.path("policy.yaml"), "--repo", site.repo, "--inventory",
        site.path("inventory.yaml"),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    return list_sets(Repository.open(LocalStore(site.repo), PASSWORD))[0].id
