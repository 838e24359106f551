"""``haprotect``'s public API: curated, documented, free to import, enough for a script."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import FIXTURES

import haprotect
from haprotect.model.inventory import Inventory, NodeAccess
from haprotect.repo import KdfParams
from haprotect.testing.plans import plan_with_movers, site

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_every_public_name_resolves_and_is_documented() -> None:
    assert haprotect.__all__ == sorted(set(haprotect.__all__))
    for name in haprotect.__all__:
        value = getattr(haprotect, name)
        if name == "__version__":
            assert isinstance(value, str)
            continue
        assert (value.__doc__ or "").strip(), f"haprotect.{name} has no docstring"
    assert set(haprotect.__all__) <= set(dir(haprotect))
    with pytest.raises(AttributeError):
        _ = haprotect.no_such_name  # type: ignore[attr-defined]


def test_importing_the_package_imports_nothing_else() -> None:
    code = (
        "import sys, haprotect; print(sorted(m for m in sys.modules if m.startswith('haprotect.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_script_discovers_generates_and_plans_through_the_public_names() -> None:
    url = str(FIXTURES / "topology" / "shop.yaml")
    topology = haprotect.discover(url)
    policy = haprotect.generate(topology, haprotect.default_rules(), source=url, now=NOW)
    assert isinstance(topology, haprotect.Topology) and isinstance(policy, haprotect.Policy)
    assert policy.items, "the topology file's highly available data is protected"
    plan = haprotect.plan_backup(policy, haprotect.load_inventory(None))
    assert {i.dataset for s in plan.sets for i in s.items} <= {i.dataset for i in policy.items}


def test_a_script_backs_up_and_restores_through_the_public_names(tmp_path: Path) -> None:
    root = tmp_path / "site"
    for name, data in {"data/a.txt": b"version 1\n", "static/index.html": b"<h1>x</h1>\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    store = haprotect.open_store(f"file://{tmp_path / 'repo'}")
    haprotect.Repository.init(store, "pw", kdf=KdfParams(n=1 << 10))
    repo = haprotect.open_repository(store, "pw")
    inventory = Inventory((NodeAccess("node1", "node1", True),), this_host="backup-host")
    topology = site(root)
    policy = haprotect.generate(topology, haprotect.default_rules(), source="file:///s", now=NOW)
    result = haprotect.run_backup(
        plan_with_movers(policy, topology, inventory, NOW), repo, haprotect.ListReporter()
    )
    assert result.status is haprotect.Status.COMPLETED, result.issues
    chosen = haprotect.find_set(haprotect.list_sets(repo), "latest", "site")
    restore = haprotect.plan_restore(chosen, inventory, to=tmp_path / "out", overwrite=True)
    done = haprotect.run_restore(restore, repo, haprotect.NullReporter())
    assert done.status is haprotect.Status.COMPLETED, done.issues
    restored = sorted(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert restored == sorted([b"version 1\n", b"<h1>x</h1>\n"])
