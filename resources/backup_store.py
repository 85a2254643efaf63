"""Where backups go: an S3 bucket (AWS, MinIO or any S3-compatible endpoint) or a local folder.

The store is a flat namespace of keys under a root (`s3://bucket/prefix` or a folder) with
put, get, list and delete; what the keys mean (content-addressed objects, manifests, the
latest pointer) is the backup logic's business (`quant_assets.automation.backup.create`). boto3 reads
the credentials from the standard AWS environment (`AWS_ACCESS_KEY_ID`, ...), so they never
pass through Dagster's config; the endpoint comes from a field or boto3's own environment.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from pydantic import Field

from resources.settings import S3_BUCKET


@dataclass(frozen=True)
class StoredObject:
    """A key in the store, its size in bytes and when it was last written (UTC)."""

    key: str
    size: int
    modified: datetime


class ObjectStore(Protocol):
    """What the backup logic needs of a store. Missing keys raise FileNotFoundError."""

    def describe(self) -> str: ...

    def put_file(self, key: str, path: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_file(self, key: str, path: Path) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> list[StoredObject]: ...

    def delete(self, keys: Iterable[str]) -> None: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{key!r} is not a store key (relative, no empty, . or .. parts)")
    return key


class LocalObjectStore:
    """Keys as files under a folder. A put writes a temporary file and renames it, so a key
    holds a whole object or nothing, as on S3."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _write(self, key: str, write) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path) -> None:
        def copy(f) -> None:
            with open(path, "rb") as src:
                while piece := src.read(1 << 20):
                    f.write(piece)

        self._write(key, copy)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda f: f.write(data))

    def get_file(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise FileNotFoundError(f"{key} is not in the backup store {self.root}")
        with open(source, "rb") as src, open(path, "wb") as dst:
            while piece := src.read(1 << 20):
                dst.write(piece)

    def get_bytes(self, key: str) -> bytes:
        source = self._path(key)
        if not source.is_file():
            raise FileNotFoundError(f"{key} is not in the backup store {self.root}")
        return source.read_bytes()

    def list(self, prefix: str = "") -> list[StoredObject]:
        # walk only the folder the prefix names, not every object for a listing of backups/
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        found = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".put-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    stat = path.stat()
                    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                    found.append(StoredObject(key, stat.st_size, modified))
        return sorted(found, key=lambda o: o.key)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)


class S3ObjectStore:
    """Keys as objects under `s3://bucket/prefix`. boto3's managed transfers stream files in
    parts (multipart above 8 MiB), so an object never sits whole in memory; a multipart
    upload becomes visible only once complete."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _name(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, error: Exception, key: str) -> FileNotFoundError | None:
        code = getattr(error, "response", {}).get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            return FileNotFoundError(f"{key} is not in the backup store {self.describe()}")
        return None

    def put_file(self, key: str, path: Path) -> None:
        self._client.upload_file(str(path), self.bucket, self._name(key))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)

    def get_file(self, key: str, path: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.download_file(self.bucket, self._name(key), str(path))
        except ClientError as error:
            raise (self._missing(error, key) or error) from None

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self._client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"].read()
        except ClientError as error:
            raise (self._missing(error, key) or error) from None

    def list(self, prefix: str = "") -> list[StoredObject]:
        root = f"{self.prefix}/" if self.prefix else ""
        found = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=root + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                modified = item["LastModified"].astimezone(UTC)
                found.append(StoredObject(item["Key"][len(root) :], item["Size"], modified))
        return sorted(found, key=lambda o: o.key)

    def delete(self, keys: Iterable[str]) -> None:
        names = [self._name(k) for k in keys]
        for start in range(0, len(names), 1000):  # S3 takes at most 1,000 keys per request
            batch = [{"Key": n} for n in names[start : start + 1000]]
            answer = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise OSError(
                    f"{self.describe()}: {len(answer['Errors'])} objects not deleted, first "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )


def open_store(url: str, endpoint_url: str | None = None, region: str | None = None) -> ObjectStore:
    """The store a URL names: `s3://bucket[/prefix]`, else a local folder (`file://` or a
    path)."""
    parts = urlsplit(url)
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not S3_BUCKET.fullmatch(bucket):
            raise ValueError(
                f"backup store {url!r}: {bucket!r} is not an S3 bucket name (3-63 lowercase "
                "letters, digits, dots, hyphens)"
            )
        return S3ObjectStore(bucket, parts.path, endpoint_url, region)
    if parts.scheme == "file":
        return LocalObjectStore(parts.path)
    if parts.scheme and len(parts.scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"backup store {url!r}: use s3://bucket/prefix or a folder")
    return LocalObjectStore(url)


class BackupStoreResource(ConfigurableResource):
    """Where backups of ClickHouse, the MLflow store and the Dagster instance go, how long they
    are kept and the key that encrypts them. A local folder by default; on S3 the
    credentials come from the AWS environment, the endpoint from `endpoint_url` (MinIO) or
    boto3's own settings (`AWS_ENDPOINT_URL`), AWS itself when neither is set."""

    url: str = Field(description="s3://bucket/prefix, or a folder (local disk) for the backups")
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO: http://minio:9000)"
    )
    region: str | None = Field(default=None, description="S3 region; boto3's default if unset")
    keep_daily: int = Field(
        default=7, ge=0, description="keep the newest backup of each of the last N days"
    )
    keep_weekly: int = Field(
        default=4, ge=0, description="keep the newest backup of each of the last M ISO weeks"
    )
    encryption_key: str | None = Field(
        default=None,
        repr=False,
        description="base64 of a 32-byte key: set, every object and manifest is encrypted "
        "(AES-256-GCM) before it leaves the machine (from the environment, never shown)",
    )

    def open(self) -> ObjectStore:
        """The store the URL names."""
        return open_store(self.url, self.endpoint_url, self.region)
