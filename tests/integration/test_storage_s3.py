"""S3Store against a real SeaweedFS server, and its error classification."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from haprotect.errors import RegistryError, UsageError
from haprotect.ports import free_ports
from haprotect.storage import open_store
from haprotect.storage.base import (
    BlobNotFound,
    BlobStore,
    PermanentStorageError,
    TransientStorageError,
)
from haprotect.storage.s3 import S3Store, classify_error
from haprotect.testing.seaweedfs import SeaweedFS
from haprotect.testing.storage_conformance import (
    BlobStoreConformance,
    StrictInputConformance,
)

_prefixes = itertools.count()


class TestS3Store(BlobStoreConformance, StrictInputConformance):
    """The session fixture exports the server's credentials, so the killed
    writer's child process finds them in its environment."""

    killed_blob_size = 64 << 20

    @pytest.fixture
    def store(self, seaweedfs: SeaweedFS) -> Iterator[BlobStore]:
        store = S3Store.from_url(seaweedfs.url(f"t{next(_prefixes)}/repo"))
        yield store
        store.close()


def test_store_prefixes_keep_repositories_apart(seaweedfs: SeaweedFS) -> None:
    one = S3Store.from_url(seaweedfs.url("apart/one"))
    two = S3Store.from_url(seaweedfs.url("apart/one-two"))
    one.put("config", b"1")
    two.put("config", b"2")
    assert [i.key for i in one.list()] == ["config"]
    assert one.get("config") == b"1"
    assert two.get("config") == b"2"


def test_open_store_reads_credentials_from_the_environment(s3_url: str) -> None:
    store = open_store(s3_url)
    store.put("data/x", b"through open_store")
    assert store.get("data/x") == b"through open_store"


def test_missing_bucket_is_permanent(seaweedfs: SeaweedFS) -> None:
    store = S3Store.from_url(seaweedfs.url("repo", bucket="no-such-bucket"))
    with pytest.raises(PermanentStorageError, match="NoSuchBucket") as caught:
        store.put("config", b"x")
    assert not isinstance(caught.value, TransientStorageError | BlobNotFound)
    with pytest.raises(PermanentStorageError):
        store.get("config")
    with pytest.raises(PermanentStorageError):
        list(store.list())


def test_wrong_secret_is_permanent(seaweedfs: SeaweedFS) -> None:
    store = S3Store.from_url(seaweedfs.url("repo"), access_key="haprotect-test", secret_key="no")
    with pytest.raises(PermanentStorageError, match="HTTP 403") as caught:
        store.get("config")
    assert caught.value.hint is not None


def test_unreachable_endpoint_is_transient() -> None:
    (port,) = free_ports(1)
    store = S3Store(
        "bucket",
        endpoint=f"http://127.0.0.1:{port}",
        access_key="a",
        secret_key="b",
        connect_timeout=1,
    )
    with pytest.raises(TransientStorageError):
        store.get("config")


def test_url_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAPROTECT_S3_ENDPOINT", "http://127.0.0.1:9")
    store = S3Store.from_url("s3://my-bucket/some/prefix/?region=eu-west-3")
    assert store.bucket == "my-bucket"
    assert store.prefix == "some/prefix/"
    assert store.endpoint == "http://127.0.0.1:9"
    assert store.region == "eu-west-3"
    assert store.url == "s3://my-bucket/some/prefix?endpoint=http://127.0.0.1:9&region=eu-west-3"
    assert S3Store.from_url(store.url).url == store.url


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3://Bad_Bucket/x",
        "s3://bucket/x?endpoint=http://a&endpoint=http://b",
        "s3://bucket/x?access_key=secret",
        "s3://bucket/../x?endpoint=http://127.0.0.1:9",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises((UsageError, PermanentStorageError)):
        S3Store.from_url(url)


def client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("NoSuchKey", 404), BlobNotFound),
        (client_error("404", 404), BlobNotFound),
        (client_error("NoSuchBucket", 404), PermanentStorageError),
        (client_error("AccessDenied", 403), PermanentStorageError),
        (client_error("InvalidAccessKeyId", 403), PermanentStorageError),
        (client_error("SlowDown", 503), TransientStorageError),
        (client_error("InternalError", 500), TransientStorageError),
        (client_error("Whatever", 502), TransientStorageError),
        (client_error("TooManyRequests", 429), TransientStorageError),
        (client_error("RequestTimeout", 400), TransientStorageError),
        (client_error("InvalidArgument", 400), PermanentStorageError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientStorageError),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), TransientStorageError),
        (NoCredentialsError(), PermanentStorageError),
    ],
)
def test_errors_are_classified(error: Exception, expected: type[Exception]) -> None:
    classified = classify_error(error, "s3://b/k")
    assert type(classified) is expected
    assert classify_error(ValueError("not boto's"), "s3://b/k") is None


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "boto3", None)
    with pytest.raises(RegistryError) as caught:
        open_store("s3://bucket/repo")
    assert caught.value.hint is not None
    assert "haprotect[s3]" in caught.value.hint
