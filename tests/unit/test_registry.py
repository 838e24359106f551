"""The one registry shape: built-ins, entry points of real distributions, the three verbs.

Third-party plug-ins come from distributions written to a directory put on
``sys.path`` (a ``NAME-1.0.dist-info`` with ``METADATA`` and
``entry_points.txt``, and the plug-in's module beside it): what pip leaves
in site-packages, found by importlib.metadata itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from haprotect.errors import ExitCode, RegistryError, UsageError
from haprotect.movers import get_mover, mover_for, mover_name_for, movers
from haprotect.quiesce import quiescers
from haprotect.registry import Builtin, Registry
from haprotect.sources import source_for, sources
from haprotect.storage import backend_for, backends, open_store

SRC = Path(__file__).resolve().parents[2] / "src"

PLUGIN = """
class Plugin:
    def __init__(self, name, kinds):
        self.name = name
        self.kinds = kinds

    def applies_to(self, thing):
        return thing in self.kinds
"""


@dataclass
class Site:
    """A directory on sys.path holding plug-in modules and distributions."""

    root: Path
    prefix: str = field(default_factory=lambda: f"plug_{uuid.uuid4().hex[:8]}")

    def module(self, name: str, text: str) -> str:
        """Write module ``prefix_name`` and return its name."""
        module = f"{self.prefix}_{name}"
        (self.root / f"{module}.py").write_text(textwrap.dedent(text))
        return module

    def plugin(self, name: str, *kinds: str, imports: str = "") -> str:
        """A module with a factory ``make`` of plug-in ``name``; returns ``module:make``."""
        module = self.module(
            name.replace("-", "_"),
            f"{imports}\n{PLUGIN}\ndef make():\n    return Plugin({name!r}, {kinds!r})\n",
        )
        return f"{module}:make"

    def distribution(self, dist: str, group: str, **entries: str) -> None:
        """An installed distribution ``dist`` 1.0 with ``entries`` in ``group``."""
        info = self.root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {ref}\n" for name, ref in entries.items())
        (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return Site(root)


@pytest.fixture
def group() -> str:
    """An entry point group of its own, so no other registry sees the test's plug-ins."""
    return f"haprotect.test_{uuid.uuid4().hex[:8]}"


def registry(group: str, *builtins: Builtin) -> Registry[Any, str]:
    return Registry("widget", group, builtins)


# ---------------------------------------------------------------- lookup verbs


def test_get_select_and_names_over_builtins_and_entry_points(site: Site, group: str) -> None:
    site.distribution(
        "thirdparty", group, zeta=site.plugin("zeta", "tape", "disk"), beta=site.plugin("beta")
    )
    widgets = registry(
        group,
        Builtin("files", site.plugin("files", "dir")),
        Builtin("disk", site.plugin("disk", "disk")),
    )
    assert widgets.names() == ["beta", "disk", "files", "zeta"]
    assert widgets.get("zeta").name == "zeta"
    # Built-ins first in their order, then entry points by name.
    assert [w.name for w in widgets] == ["files", "disk", "beta", "zeta"]
    assert widgets.select("disk").name == "disk"
    assert widgets.select("tape").name == "zeta"
    assert widgets.select("cloud") is None
    assert widgets.get("disk") is widgets.get("disk")


def test_an_unknown_name_is_a_registry_error_naming_the_known_ones(site: Site, group: str) -> None:
    widgets = registry(group, Builtin("files", site.plugin("files")))
    with pytest.raises(RegistryError, match=r"unknown widget 'tape' \(known: files\)") as caught:
        widgets.get("tape")
    assert caught.value.exit_code == ExitCode.REGISTRY == 5


# ---------------------------------------------------------------- duplicates


def test_two_builtins_of_one_name_are_refused(site: Site, group: str) -> None:
    ref = site.plugin("files")
    with pytest.raises(RegistryError, match="widget 'files' is registered twice"):
        registry(group, Builtin("files", ref), Builtin("files", ref))


def test_an_entry_point_cannot_take_a_builtin_name(site: Site, group: str) -> None:
    site.distribution("thirdparty", group, files=site.plugin("files"))
    widgets = registry(group, Builtin("files", site.plugin("other")))
    with pytest.raises(RegistryError) as caught:
        widgets.names()
    message = caught.value.message
    assert "widget 'files' is registered twice" in message
    assert "by haprotect (built in)" in message
    assert f"entry point files = {site.prefix}_files:make of thirdparty 1.0" in message
    assert caught.value.exit_code == 5
    # Refused at every use, not once.
    with pytest.raises(RegistryError, match="registered twice"):
        widgets.get("files")


def test_two_distributions_cannot_register_one_name(site: Site, group: str) -> None:
    site.distribution("alpha-plugins", group, tape=site.plugin("tape"))
    site.distribution("beta-plugins", group, tape=site.plugin("tape2"))
    with pytest.raises(RegistryError) as caught:
        registry(group).get("tape")
    assert "of alpha-plugins 1.0" in caught.value.message
    assert "of beta-plugins 1.0" in caught.value.message


# ---------------------------------------------------------------- missing extras


def test_an_entry_point_missing_its_extra_names_what_to_install(site: Site, group: str) -> None:
    missing = f"{site.prefix}_not_installed"
    site.distribution(
        "thirdparty",
        group,
        fast=site.plugin("fast", imports=f"import {missing}") + " [speed]",
        plain=site.plugin("plain"),
    )
    widgets = registry(group)
    assert widgets.names() == ["fast", "plain"]  # listed without importing either
    assert widgets.get("plain").name == "plain"
    with pytest.raises(RegistryError) as caught:
        widgets.get("fast")
    assert caught.value.exit_code == 5
    assert f"widget 'fast' (entry point fast = {site.prefix}_fast:make [speed]" in (
        caught.value.message
    )
    assert f"needs module '{missing}', which is not installed" in caught.value.message
    assert caught.value.hint == "pip install 'thirdparty[speed]'"


def test_a_builtin_missing_its_extra_names_haprotects_extra(site: Site, group: str) -> None:
    ref = site.plugin("k8s", "kubernetes", imports=f"import {site.prefix}_kubernetes_client")
    widgets = registry(group, Builtin("k8s", ref, extra="k8s"))
    with pytest.raises(RegistryError, match="needs module") as caught:
        widgets.get("k8s")
    assert caught.value.hint == "pip install 'haprotect[k8s]'"
    # select raises too rather than taking the broken plug-in for "not applicable"
    with pytest.raises(RegistryError, match="needs module"):
        widgets.select("kubernetes")


def test_a_plugin_must_carry_the_name_it_is_registered_under(site: Site, group: str) -> None:
    site.distribution("thirdparty", group, tape=site.plugin("cassette"))
    with pytest.raises(RegistryError, match=r"widget 'tape' .* calls itself 'cassette'"):
        registry(group).get("tape")


def test_a_plugin_lacking_a_method_of_the_contract_is_refused_when_it_loads(
    site: Site, group: str
) -> None:
    site.distribution("thirdparty", group, tape=site.plugin("tape", "cassette"))
    strict: Registry[Any, str] = Registry("widget", group, (), contract=("backup", "restore"))
    with pytest.raises(RegistryError, match=r"widget 'tape' .* lacks backup, restore"):
        strict.get("tape")
    assert registry(group).get("tape").name == "tape", "without the contract it loads"


def test_a_factory_that_fails_is_a_registry_error(site: Site, group: str) -> None:
    module = site.module("broken", "def make():\n    raise OSError('no device')\n")
    site.distribution("thirdparty", group, tape=f"{module}:make")
    with pytest.raises(RegistryError, match="failed to start: OSError: no device"):
        registry(group).get("tape")


def test_a_missing_attribute_is_named(site: Site, group: str) -> None:
    module = site.module("empty", "")
    site.distribution("thirdparty", group, tape=f"{module}:make")
    with pytest.raises(RegistryError, match=f"{module}:make does not exist"):
        registry(group).get("tape")


# ---------------------------------------------------------------- laziness


def test_names_import_no_plugin_and_get_imports_one(site: Site, group: str) -> None:
    first, second = site.plugin("first"), site.plugin("second")
    widgets = registry(group, Builtin("first", first), Builtin("second", second))
    assert widgets.names() == ["first", "second"]
    assert f"{site.prefix}_first" not in sys.modules
    widgets.get("first")
    assert f"{site.prefix}_first" in sys.modules
    assert f"{site.prefix}_second" not in sys.modules


def test_making_a_registry_reads_no_entry_points(site: Site, group: str) -> None:
    widgets = registry(group)
    site.distribution("thirdparty", group, tape=site.plugin("tape"))
    assert widgets.names() == ["tape"]


def test_refresh_reads_entry_points_installed_since(site: Site, group: str) -> None:
    widgets = registry(group, Builtin("files", site.plugin("files")))
    files = widgets.get("files")
    assert widgets.names() == ["files"]
    site.distribution("thirdparty", group, tape=site.plugin("tape"))
    assert widgets.names() == ["files"]
    widgets.refresh()
    assert widgets.names() == ["files", "tape"]
    assert widgets.get("files") is files  # a built-in made before is kept


def test_importing_the_plugin_packages_imports_no_plugin() -> None:
    """No import side effects: the packages name their built-ins, nothing is loaded."""
    code = """
        import sys
        import haprotect.movers, haprotect.quiesce, haprotect.sources, haprotect.storage
        plugins = (
            "haprotect.movers.files", "haprotect.movers.postgres", "haprotect.movers.blockdev",
            "haprotect.quiesce.http_gate", "haprotect.quiesce.fsfreeze",
            "haprotect.sources.pacemaker.source", "haprotect.sources.topology_file",
            "haprotect.storage.local", "haprotect.storage.s3", "importlib.metadata",
        )
        print(sorted(m for m in plugins if m in sys.modules))
        print(haprotect.movers.movers.names())
        print(sorted(m for m in plugins if m in sys.modules))
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        check=True,
    ).stdout.splitlines()
    assert out == ["[]", "['block', 'files', 'postgresql']", "['importlib.metadata']"]


# ---------------------------------------------------------------- the four registries


@pytest.mark.parametrize("plugins", [sources, movers, quiescers, backends], ids=lambda r: r.kind)
def test_every_builtin_loads_under_its_name(plugins: Registry[Any, Any]) -> None:
    names = plugins.names()
    assert names
    for name in names:
        assert plugins.get(name).name == name


@pytest.fixture
def installed(site: Site) -> Iterator[Site]:
    """A site whose plug-ins the real registries see; they forget them afterwards."""
    everything = (sources, movers, quiescers, backends)
    yield site
    for plugins in everything:
        plugins.refresh()


def test_the_packages_lookups_find_entry_point_plugins(installed: Site) -> None:
    module = installed.module(
        "tape",
        """
        from haprotect.movers import Mover

        class Tape(Mover):
            name = "tape"

            def applies_to(self, kind):
                return kind == "tape-library"
        """,
    )
    installed.distribution("haprotect-tape", "haprotect.movers", tape=f"{module}:Tape")
    movers.refresh()
    assert "tape" in movers.names()
    assert get_mover("tape").name == "tape"
    assert mover_for("tape-library") is get_mover("tape")
    assert mover_name_for("tape-library") == "tape"
    assert mover_name_for("filesystem") == "files"  # built-ins still come first
    assert mover_for("paper") is None


def test_a_storage_backend_plugin_opens_its_scheme(installed: Site) -> None:
    assert "ftp" not in backends.names()
    module = installed.module(
        "ftp",
        """
        from haprotect.storage.backends import StorageBackend
        from haprotect.storage.memory import MemoryStore

        def backend():
            return StorageBackend("ftp", MemoryStore, "a memory store named ftp")
        """,
    )
    installed.distribution("haprotect-ftp", "haprotect.storage", ftp=f"{module}:backend")
    with pytest.raises(UsageError, match="no storage backend for ftp://"):
        backend_for("ftp://host/repo")
    backends.refresh()
    assert backend_for("ftp://host/repo").name == "ftp"
    store = open_store("ftp://host/repo")
    store.put("config", b"x")
    assert store.get("config") == b"x"


def test_an_unknown_source_url_is_bad_usage() -> None:
    with pytest.raises(UsageError, match=r"no source reads 'heartbeat:///etc/ha\.cf'"):
        source_for("heartbeat:///etc/ha.cf")
    assert source_for("file:///tmp/topology.yaml").name == "topology_file"
