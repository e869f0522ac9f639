"""S3-compatible object storage through boto3, with timeouts and the error taxonomy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from rag.core.errors import ConfigurationError, NotFound, RagError, Unavailable
from rag.settings import Settings


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime


def _translate(exc: Exception, *, bucket: str, key: str = "") -> RagError:
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "404", "NotFound"}:
            return NotFound(f"{where} does not exist")
        if code == "NoSuchBucket":
            return NotFound(f"bucket {bucket} does not exist (run `make up` to create the buckets)")
        if code in {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403"}:
            return ConfigurationError(
                f"object storage refused the credentials for {where} ({code}): check S3_ACCESS_KEY_ID "
                "and S3_SECRET_ACCESS_KEY"
            )
        return Unavailable(f"object storage failed on {where}: {code or exc}")
    if isinstance(exc, EndpointConnectionError):
        return Unavailable(
            f"object storage is unreachable at {exc.kwargs.get('endpoint_url', '')}: is it running?"
        )
    return Unavailable(f"object storage failed on {where}: {exc}")


class BlobStore:
    """One boto3 client per process; every call bounded by connect/read timeouts."""

    def __init__(self, settings: Settings, *, read_timeout: float = 60.0) -> None:
        self.settings = settings
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.S3_ENDPOINT_URL,
            aws_access_key_id=settings.S3_ACCESS_KEY_ID,
            aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY.get_secret_value(),
            region_name=settings.S3_REGION,
            config=Config(
                connect_timeout=5,
                read_timeout=read_timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        try:
            self._client.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": hashlib.sha256(data).hexdigest()},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=key) from None

    def get(self, bucket: str, key: str) -> bytes:
        try:
            body: bytes = self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=key) from None

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._client.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            error = _translate(exc, bucket=bucket, key=key)
            if isinstance(error, NotFound):
                return False
            raise error from None
        except BotoCoreError as exc:
            raise _translate(exc, bucket=bucket, key=key) from None

    def delete(self, bucket: str, key: str) -> None:
        """Idempotent: deleting a missing object succeeds."""
        try:
            self._client.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            error = _translate(exc, bucket=bucket, key=key)
            if not isinstance(error, NotFound):
                raise error from None

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], int(item["Size"]), item["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=prefix) from None

    def upload_file(self, bucket: str, key: str, path: Path) -> None:
        try:
            self._client.upload_file(str(path), bucket, key)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=key) from None

    def download_file(self, bucket: str, key: str, path: Path) -> None:
        try:
            self._client.download_file(bucket, key, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=key) from None

    def upload_stream(
        self,
        bucket: str,
        key: str,
        stream: IO[bytes],
        *,
        content_type: str = "application/octet-stream",
        part_bytes: int = 16 * 2**20,
    ) -> None:
        """Upload a non-seekable stream as it is read (multipart; at most a few parts in memory).

        A failed upload aborts its multipart upload: no partial object is left behind.
        """
        transfer = TransferConfig(
            multipart_threshold=part_bytes, multipart_chunksize=part_bytes, max_concurrency=2
        )
        try:
            self._client.upload_fileobj(
                stream, bucket, key, ExtraArgs={"ContentType": content_type}, Config=transfer
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=key) from None

    def open_stream(self, bucket: str, key: str) -> IO[bytes]:
        """The object's body as a stream to ``read(n)`` from; the caller closes it."""
        try:
            body: IO[bytes] = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            return body
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=key) from None

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        try:
            head = self._client.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=key) from None
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"])

    def ready(self, bucket: str | None = None) -> bool:
        """Whether ``bucket`` (default: the documents bucket) answers."""
        try:
            self._client.head_bucket(Bucket=bucket or self.settings.S3_BUCKET_DOCUMENTS)
            return True
        except (ClientError, BotoCoreError):
            return False
