"""A blob store in an S3 bucket (AWS or any S3-compatible server), through boto3.

The URL names the bucket, an optional key prefix and, in its query, where
the server is::

    s3://BUCKET[/PREFIX][?endpoint=URL][&region=REGION]

    s3://backups/haprotect/prod
    s3://backups/prod?endpoint=http://127.0.0.1:8333&region=us-east-1

``endpoint`` falls back to the ``HAPROTECT_S3_ENDPOINT`` environment
variable, then to AWS itself; with a custom endpoint, requests use
path-style addressing (``http://host/bucket/key``), which S3-compatible
servers expect. ``region`` falls back to boto3's own lookup (``AWS_REGION``,
``AWS_DEFAULT_REGION``, ``~/.aws/config``), then to ``us-east-1`` for a
custom endpoint. Credentials never go in the URL, which ends up in logs and
job history: boto3 finds them as usual (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws/credentials``, an
instance role).

One boto3 client serves the store; boto3 clients are thread-safe. Its own
retries are off: retrying is the job of the RetryingStore wrapper, and two
layers of retries multiply.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

from haprotect.errors import UsageError
from haprotect.redact import display_url, redact_text
from haprotect.registry import require_extra
from haprotect.storage.base import (
    NO_FEATURES,
    BlobInfo,
    BlobNotFound,
    PermanentStorageError,
    StorageError,
    StoreFeature,
    TransientStorageError,
    check_key,
    check_prefix,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ENDPOINT_ENV = "HAPROTECT_S3_ENDPOINT"
DEFAULT_CONNECTIONS = 32

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequests",
        "RequestTimeout",
        "RequestTimeoutException",
        "OperationAborted",
    }
)


class S3Store:
    """Blobs as objects under ``prefix`` in one bucket."""

    features: frozenset[StoreFeature] = NO_FEATURES

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        max_connections: int = DEFAULT_CONNECTIONS,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        require_extra("boto3", "s3")
        import boto3.session
        from botocore.config import Config

        if not _BUCKET.fullmatch(bucket):
            raise UsageError(f"{bucket!r} is not an S3 bucket name")
        prefix = prefix.strip("/")
        check_prefix(prefix)
        self.bucket = bucket
        self.prefix = prefix + "/" if prefix else ""
        self.endpoint = endpoint
        self._explicit_region = region
        config = Config(
            max_pool_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": 1},
            s3={"addressing_style": "path" if endpoint else "auto"},
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key
        )
        self.region = region or session.region_name or ("us-east-1" if endpoint else None)
        self._client: S3Client = session.client(
            "s3", endpoint_url=endpoint, region_name=self.region, config=config
        )

    @classmethod
    def from_url(
        cls, url: str, *, access_key: str | None = None, secret_key: str | None = None
    ) -> S3Store:
        """Open the store an ``s3://`` URL names (see the module docstring)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise UsageError(f"{display_url(url)}: not an s3://bucket/prefix URL")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"endpoint", "region"})
        if unknown:
            raise UsageError(
                f"{display_url(url)}: unknown S3 URL parameter {unknown[0]!r}",
                hint="an s3:// URL takes endpoint= and region=; credentials come from AWS_*",
            )
        endpoint = _single(query, "endpoint", url) or os.environ.get(ENDPOINT_ENV) or None
        return cls(
            parts.netloc,
            parts.path,
            endpoint=endpoint,
            region=_single(query, "region", url),
            access_key=access_key,
            secret_key=secret_key,
        )

    @property
    def url(self) -> str:
        params = {"endpoint": self.endpoint, "region": self._explicit_region}
        query = urlencode({k: v for k, v in params.items() if v}, safe=":/")
        return f"s3://{self.bucket}/{self.prefix.rstrip('/')}" + (f"?{query}" if query else "")

    def close(self) -> None:
        """Release the client's connections; the store is unusable afterwards."""
        self._client.close()

    def put(self, key: str, data: bytes) -> None:
        name = self._name(key)
        with self._translated(key):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def get(self, key: str) -> bytes:
        name = self._name(key)
        with self._translated(key):
            return self._client.get_object(Bucket=self.bucket, Key=name)["Body"].read()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"a range needs offset >= 0 and length >= 0, not {offset}, {length}")
        name = self._name(key)
        if length == 0:
            if not self.exists(key):
                raise BlobNotFound(f"{self._where(key)}: no such blob")
            return b""
        byte_range = f"bytes={offset}-{offset + length - 1}"
        with self._translated(key):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=name, Range=byte_range)
            except Exception as exc:
                if _error_code(exc) == "InvalidRange":
                    return b""
                raise
            return response["Body"].read()

    def exists(self, key: str) -> bool:
        name = self._name(key)
        try:
            with self._translated(key):
                self._client.head_object(Bucket=self.bucket, Key=name)
        except BlobNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Delete ``key``; S3 says nothing of a missing key, so ask first.

        The check and the delete are two requests: a concurrent delete between
        them goes unnoticed, which no caller can tell from a lost race.
        """
        name = self._name(key)
        if not self.exists(key):
            raise BlobNotFound(f"{self._where(key)}: no such blob")
        with self._translated(key):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        check_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        skip = len(self.prefix)
        with self._translated(prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield BlobInfo(item["Key"][skip:], item["Size"])

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    @contextmanager
    def _translated(self, key: str) -> Iterator[None]:
        """Turn boto3's exceptions into storage errors; let any other pass."""
        try:
            yield
        except Exception as exc:
            error = classify_error(exc, self._where(key))
            if error is None:
                raise
            raise error from exc


def classify_error(exc: Exception, where: str) -> StorageError | None:
    """Map a boto3/botocore failure to the storage error classes (None: not boto's)."""
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        code = _error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = exc.response.get("Error", {}).get("Message") or code
        text = f"{where}: {message} ({code}, HTTP {status})"
        if code == "NoSuchBucket":
            return PermanentStorageError(text, hint="create the bucket, or fix its name")
        if code in _NOT_FOUND_CODES or status == 404:
            return BlobNotFound(f"{where}: no such blob")
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientStorageError(text)
        if status == 403:
            return PermanentStorageError(
                text, hint="check the credentials (AWS_ACCESS_KEY_ID, ...) and bucket policy"
            )
        return PermanentStorageError(text)
    transient = (
        boto.ConnectionError,
        boto.HTTPClientError,
        boto.IncompleteReadError,
        boto.ResponseStreamingError,
    )
    if isinstance(exc, transient):
        # botocore names the endpoint's URL, and with it what credentials it holds
        return TransientStorageError(f"{where}: {redact_text(str(exc))}")
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return PermanentStorageError(
            f"{where}: {exc}", hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    if isinstance(exc, boto.BotoCoreError):
        return PermanentStorageError(f"{where}: {redact_text(str(exc))}")
    return None


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _single(query: dict[str, list[str]], name: str, url: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1 or not values[0]:
        raise UsageError(f"{display_url(url)}: give {name}= once, with a value")
    return values[0]
