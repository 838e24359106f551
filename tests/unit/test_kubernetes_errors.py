"""Dumps the Kubernetes source refuses, each in one line naming the file and the object.

And a fuzzing run: at least 500 dumps made from the recorded objects by
changing, dropping and mixing their fields, cutting the text short or
replacing it with any JSON, are each read into a topology that holds
together, or refused with one line; nothing else escapes.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import FIXTURES

from haprotect.errors import ClusterConfigError, ExitCode, HaprotectError, InputError
from haprotect.model.topology import Topology
from haprotect.sources import discover

DUMP = FIXTURES / "kubernetes" / "shop.json"
ITEMS: list[dict[str, Any]] = json.loads(DUMP.read_text())["items"]
HAPROTECT = str(Path(sys.executable).with_name("haprotect"))
SECRET_VALUES = ("czNjcjN0LUNOUEctcGFzc3dvcmQ=", "Sup3r-S3cret-DB", "r3dis-Secret-42")


def dump(tmp_path: Path, text: str) -> str:
    path = tmp_path / "dump.json"
    path.write_text(text)
    return f"kubernetes+file://{path}"


def one_line(error: HaprotectError, path: Path) -> str:
    assert "\n" not in error.message
    assert error.message.startswith(f"{path}")
    return error.message


def with_item(name: str, change: Any) -> str:
    items = copy.deepcopy(ITEMS)
    for item in items:
        if item["metadata"]["name"] == name:
            change(item)
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def test_text_that_is_not_json_is_refused_with_its_line(tmp_path: Path) -> None:
    text = DUMP.read_text()
    url = dump(tmp_path, text[: len(text) // 2])
    with pytest.raises(ClusterConfigError) as caught:
        discover(url)
    message = one_line(caught.value, tmp_path / "dump.json")
    assert message.startswith(f"{tmp_path / 'dump.json'}:") and "not JSON" in message
    line = message.split(":")[1]
    assert line.isdigit() and int(line) > 1000


def test_an_empty_or_missing_dump_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match="holds no objects"):
        discover(dump(tmp_path, "  \n"))
    with pytest.raises(InputError, match="cannot read"):
        discover(f"kubernetes+file://{tmp_path / 'absent.json'}")


def test_a_field_of_the_wrong_type_names_the_object_and_the_field(tmp_path: Path) -> None:
    def bad_replicas(item: dict[str, Any]) -> None:
        if item["kind"] == "StatefulSet":
            item["spec"]["replicas"] = "two"

    with pytest.raises(ClusterConfigError) as caught:
        discover(dump(tmp_path, with_item("redis", bad_replicas)))
    assert one_line(caught.value, tmp_path / "dump.json").endswith(
        "StatefulSet shop/redis: spec.replicas is a string, not an integer"
    )

    def bad_label(item: dict[str, Any]) -> None:
        if item["kind"] == "Pod":
            item["metadata"]["labels"]["cnpg.io/instanceRole"] = ["primary"]

    with pytest.raises(ClusterConfigError) as caught:
        discover(dump(tmp_path, with_item("pg-2", bad_label)))
    assert "Pod shop/pg-2: metadata.labels.cnpg.io/instanceRole is a list" in (caught.value.message)


def test_a_secret_is_never_read_even_when_malformed(tmp_path: Path) -> None:
    def broken(item: dict[str, Any]) -> None:
        if item["kind"] == "Secret":
            item["data"] = ["Sup3r-S3cret-DB", {"nested": 1}]
            item["metadata"]["labels"] = 5

    read = discover(dump(tmp_path, with_item("pg-app", broken))).clusters[0]
    assert replace(read, name="shop") == discover(f"kubernetes+file://{DUMP}").clusters[0]


def test_the_cli_prints_one_line_and_exits_3_for_a_bad_dump(tmp_path: Path) -> None:
    def bad(item: dict[str, Any]) -> None:
        item["spec"]["volumes"] = {"name": "Sup3r-S3cret-DB"}

    url = dump(tmp_path, with_item("api-7c9d5b6f4-x2kq8", bad))
    done = subprocess.run(
        [HAPROTECT, "discover", url],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
        timeout=120,
    )
    assert done.returncode == ExitCode.INPUT
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("hint: ")]
    assert lines == [
        f"haprotect: error: {tmp_path / 'dump.json'}: Pod shop/api-7c9d5b6f4-x2kq8: "
        "spec.volumes is an object, not a list"
    ]
    assert "Sup3r" not in done.stderr + done.stdout


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    ["kind", "apiVersion", "metadata", "spec", "status", "items", "labels", "name", "namespace"]
)


@st.composite
def mutated_dumps(draw: st.DrawFn) -> str:
    """The recorded objects with fields changed, dropped or added, in one of the dump's shapes."""
    shape = draw(st.sampled_from(["list", "documents", "cut", "any-json"]))
    if shape == "any-json":
        return json.dumps(draw(JSON))
    chosen = draw(st.lists(st.sampled_from(range(len(ITEMS))), max_size=14))
    items: list[Any] = [copy.deepcopy(ITEMS[i]) for i in chosen]
    for _ in range(draw(st.integers(0, 8))):
        if not items:
            break
        node: Any = items[draw(st.integers(0, len(items) - 1))]
        for _ in range(draw(st.integers(0, 6))):
            keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            child = node[draw(st.sampled_from(keys))]
            if not isinstance(child, dict | list):
                break
            node = child
        if isinstance(node, dict):
            key = draw(st.sampled_from(sorted(node)) | KEYS) if node else draw(KEYS)
            if draw(st.booleans()) and key in node:
                del node[key]
            else:
                node[key] = draw(JSON)
        elif node:
            node[draw(st.integers(0, len(node) - 1))] = draw(JSON)
    if draw(st.booleans()):
        items.append(draw(JSON))
    if shape == "documents":
        return "\n".join(json.dumps(item) for item in items)
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    if shape == "cut":
        return text[: draw(st.integers(0, len(text)))]
    return text


def holds_together(topology: Topology) -> None:
    """The invariants every source's topology keeps."""
    for cluster in topology.clusters:
        resources = [r.id for r in cluster.resources]
        assert len(resources) == len(set(resources))
        datasets = [d.id for d in cluster.datasets]
        assert len(datasets) == len(set(datasets))
        nodes = {n.name for n in cluster.nodes}
        for dataset in cluster.datasets:
            assert dataset.resource in resources
            assert dataset.primary is None or dataset.primary in nodes
            assert dataset.primary not in dataset.standbys
            assert set(dataset.standbys) <= nodes
        for resource in cluster.resources:
            assert set(resource.placement) <= nodes
            assert resource.parent is None or resource.parent in resources
        for application in cluster.applications:
            for tier in application.tiers:
                assert set(tier.resources) <= set(resources)
                assert set(tier.datasets) <= set(datasets)
        text = json.dumps(
            [d.location for d in cluster.datasets] + [d.why for d in cluster.datasets]
        )
        assert not any(secret in text for secret in SECRET_VALUES)


def test_at_least_500_fuzzed_dumps_give_a_topology_or_one_line() -> None:
    seen = {"read": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fuzzed.json"

        @settings(
            max_examples=500,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(mutated_dumps())
        def check(text: str) -> None:
            path.write_text(text)
            try:
                topology = discover(f"kubernetes+file://{path}")
            except HaprotectError as error:
                one_line(error, path)
                assert not any(secret in error.message for secret in SECRET_VALUES)
                seen["refused"] += 1
                return
            holds_together(topology)
            seen["read"] += 1

        check()
    assert seen["read"] + seen["refused"] >= 500
    assert seen["read"] > 50 and seen["refused"] > 50
