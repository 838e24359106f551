"""The Kubernetes source's API path, through the official client, against a loopback server.

No API server can run here: a small HTTP server on 127.0.0.1 answers the
list requests the client sends (``/api/v1/pods``,
``/apis/apps/v1/statefulsets``, ``/apis/postgresql.cnpg.io/v1/clusters``...)
with the recorded objects of tests/fixtures/kubernetes/shop.json, in the
shape the API sends them (a typed list whose items carry no kind), and a
kubeconfig written by the test points the client at it with a bearer token.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.conftest import FIXTURES

from haprotect.errors import ComponentError, InputError, UsageError
from haprotect.model.topology import Replication
from haprotect.sources import discover
from haprotect.sources.kubernetes.api import Target, parse_target

pytest.importorskip("kubernetes")

DUMP = FIXTURES / "kubernetes" / "shop.json"
TOKEN = "test-token-0f9e"

#: API path -> (group/version, kind) of the objects listed there
PATHS = {
    "/api/v1/nodes": ("v1", "Node"),
    "/api/v1/persistentvolumes": ("v1", "PersistentVolume"),
    "/apis/storage.k8s.io/v1/storageclasses": ("storage.k8s.io/v1", "StorageClass"),
    "/api/v1/persistentvolumeclaims": ("v1", "PersistentVolumeClaim"),
    "/api/v1/pods": ("v1", "Pod"),
    "/api/v1/services": ("v1", "Service"),
    "/apis/apps/v1/statefulsets": ("apps/v1", "StatefulSet"),
    "/apis/apps/v1/deployments": ("apps/v1", "Deployment"),
    "/apis/policy/v1/poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget"),
    "/apis/postgresql.cnpg.io/v1/clusters": ("postgresql.cnpg.io/v1", "Cluster"),
    "/apis/acid.zalan.do/v1/postgresqls": ("acid.zalan.do/v1", "postgresql"),
    "/apis/postgres-operator.crunchydata.com/v1beta1/postgresclusters": (
        "postgres-operator.crunchydata.com/v1beta1",
        "PostgresCluster",
    ),
}


def recorded_lists() -> dict[str, bytes]:
    """The dump's objects as the API lists them: ``PodList`` and such, items without kind."""
    items = json.loads(DUMP.read_text())["items"]
    out: dict[str, bytes] = {}
    for path, (api_version, kind) in PATHS.items():
        listed = [
            {k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
            for item in items
            if item["kind"] == kind and item["apiVersion"] == api_version
        ]
        body = {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": "48211"},
            "items": listed,
        }
        out[path] = json.dumps(body).encode()
    return out


def status(code: int, reason: str, message: str) -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    ).encode()


@dataclass
class FakeApiServer:
    """Recorded answers by path; ``forbidden`` paths answer 403, unknown ones 404."""

    answers: dict[str, bytes]
    forbidden: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.requests.append(path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.reply(401, status(401, "Unauthorized", "Unauthorized"))
                elif path in server.forbidden:
                    resource = path.rsplit("/", 1)[-1]
                    self.reply(
                        403,
                        status(
                            403,
                            "Forbidden",
                            f'{resource} is forbidden: User "system:serviceaccount:backup:'
                            f'haprotect" cannot list resource "{resource}" in API group "" '
                            "at the cluster scope",
                        ),
                    )
                elif path in server.answers:
                    self.reply(200, server.answers[path])
                else:
                    self.reply(404, status(404, "NotFound", "the server could not find it"))

            def reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer(recorded_lists())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    fake.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


def kubeconfig(path: Path, port: int, token: str = TOKEN) -> Path:
    """A kubeconfig with two contexts on the loopback server: ``shop`` (current) and ``other``."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "loop", "cluster": {"server": f"http://127.0.0.1:{port}"}},
                ],
                "users": [
                    {"name": "backup", "user": {"token": token}},
                    {"name": "nobody", "user": {"token": "wrong"}},
                ],
                "contexts": [
                    {"name": "shop", "context": {"cluster": "loop", "user": "backup"}},
                    {"name": "other", "context": {"cluster": "loop", "user": "nobody"}},
                ],
                "current-context": "shop",
            }
        )
    )
    return path


def test_the_client_path_gives_the_dump_s_topology(
    api_server: FakeApiServer, tmp_path: Path
) -> None:
    config = kubeconfig(tmp_path / "config", api_server.port)
    live = discover(f"kubernetes://{config}")
    saved = discover(f"kubernetes+file://{DUMP}")
    assert live == saved
    pg = live.clusters[0].dataset("shop/cnpg/pg")
    assert (pg.replication, pg.primary, pg.standbys) == (
        Replication.REPLICATED,
        "node-b",
        ("node-a", "node-c"),
    )
    redis = live.clusters[0].dataset("shop/statefulset/redis/data")
    assert (redis.primary, redis.standbys) == ("node-a", ("node-c",))
    assert set(api_server.requests) == set(PATHS)
    assert not any("secret" in path for path in api_server.requests)


def test_a_context_names_the_cluster_and_its_user(
    api_server: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = kubeconfig(tmp_path / "config", api_server.port)
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert discover("kubernetes://shop").clusters[0].name == "shop"
    with pytest.raises(ComponentError) as caught:
        discover("kubernetes://other")
    assert "listing nodes is unauthorized" in caught.value.message
    with pytest.raises(InputError, match="no context 'nowhere'"):
        discover("kubernetes://nowhere")


def test_an_operator_whose_resource_is_unknown_is_passed_over(
    api_server: FakeApiServer, tmp_path: Path
) -> None:
    del api_server.answers["/apis/postgresql.cnpg.io/v1/clusters"]
    config = kubeconfig(tmp_path / "config", api_server.port)
    cluster = discover(f"kubernetes://{config}?context=shop").clusters[0]
    ids = {d.id for d in cluster.datasets}
    assert "shop/cnpg/pg" not in ids
    assert "orders/postgresql/acid-orders" in ids


def test_a_forbidden_resource_is_one_line_naming_it(
    api_server: FakeApiServer, tmp_path: Path
) -> None:
    api_server.forbidden.add("/api/v1/persistentvolumeclaims")
    config = kubeconfig(tmp_path / "config", api_server.port)
    with pytest.raises(ComponentError) as caught:
        discover(f"kubernetes://{config}")
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(f"kubernetes API http://127.0.0.1:{api_server.port}: ")
    assert "listing persistentvolumeclaims is forbidden" in message
    assert caught.value.hint is not None and "list" in caught.value.hint


def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = kubeconfig(tmp_path / "config", port)
    with pytest.raises(ComponentError) as caught:
        discover(f"kubernetes://{config}")
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(f"kubernetes API http://127.0.0.1:{port}: cannot list nodes")


def test_a_bad_kubeconfig_is_one_line_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("clusters: [\n")
    with pytest.raises(InputError) as caught:
        discover(f"kubernetes://{config}")
    assert caught.value.message.startswith(f"{config}: cannot use the kubeconfig")
    assert "\n" not in caught.value.message
    with pytest.raises(InputError, match="cannot use the kubeconfig"):
        discover(f"kubernetes://{tmp_path / 'missing'}")


def test_urls_name_a_context_or_a_kubeconfig() -> None:
    assert parse_target("kubernetes://") == Target(None, None)
    assert parse_target("kubernetes://prod") == Target(None, "prod")
    assert parse_target("kubernetes:///etc/kube/config") == Target("/etc/kube/config", None)
    assert parse_target("kubernetes:///etc/kube/config?context=dr") == Target(
        "/etc/kube/config", "dr"
    )
    with pytest.raises(UsageError):
        parse_target("kubernetes://prod/etc/kube/config")
    with pytest.raises(UsageError):
        parse_target("kubernetes://prod?namespace=shop")


WITHOUT_CLIENT = """
import sys
sys.modules["kubernetes"] = None  # as if the k8s extra were not installed
from haprotect.errors import RegistryError
from haprotect.sources import discover
topology = discover(sys.argv[1])
print(len(topology.clusters[0].datasets))
try:
    discover("kubernetes://")
except RegistryError as error:
    print(error.message)
    print(error.hint)
"""


def test_a_dump_needs_no_client_and_the_api_names_the_extra_that_installs_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_CLIENT, f"kubernetes+file://{DUMP}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "6",
        "kubernetes:// needs the kubernetes client, which is not installed",
        "pip install 'haprotect[k8s]', or read a dump with kubernetes+file:///path",
    ]
