"""A one-application topology file (site: tier web, data set uploads on web1) for CLI tests."""

from __future__ import annotations

from pathlib import Path

WEB_TOPOLOGY = """\
apiVersion: haprotect/v1
kind: Topology
clusters:
  - name: web
    nodes: [web1]
    datasets:
      - id: uploads
        kind: filesystem
        location: {{directory: {uploads}{more}}}
        replication: shared
        primary: web1
        ha: true
    applications:
      - name: site
        tiers:
          - {{name: web, resources: [nginx], datasets: [uploads]}}
"""


def web_topology(uploads: Path, more: str = "") -> str:
    """The topology's text; ``more`` adds entries to the data set's location (``, port: 80``)."""
    return WEB_TOPOLOGY.format(uploads=uploads, more=more)


def write_web_site(tmp: Path) -> tuple[Path, Path]:
    """``tmp/uploads`` with one file, the topology file and rules writing to ``tmp/repo``."""
    uploads = tmp / "uploads"
    uploads.mkdir()
    (uploads / "a.txt").write_text("a")
    topology = tmp / "web.yaml"
    topology.write_text(web_topology(uploads))
    rules = tmp / "rules.yaml"
    rules.write_text(f"where: file://{tmp}/repo\n")
    return topology, rules
