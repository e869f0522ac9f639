"""S3-compatible object storage through boto3, with timeouts and the error taxonomy.

Every call is bounded: botocore's standard retry mode makes at most ``ATTEMPTS`` attempts (a
refused or reset connection, a throttle, a 5xx or a read timeout are retried with jittered
backoff), each bounded by the connect and read timeouts; then the call raises Unavailable. A
pooled connection that the store closed (a restart) is replaced by urllib3 before it is used,
so a restart of the store costs no call an error once it is back.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from rag.core.errors import ConfigurationError, NotFound, RagError, Unavailable
from rag.core.ports import ObjectInfo
from rag.settings import Settings

# Uploads are written here before their content address is known (tenants never start with ".").
STAGING_PREFIX = ".staging/"
MIN_PART_BYTES = 5 * 2**20  # S3: every part of a multipart upload but the last
DEFAULT_PART_BYTES = 8 * 2**20
ATTEMPTS = 3  # in all, the first included (botocore's "max_attempts" counts retries only)
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 20.0  # of one socket read: a hung store costs a call ATTEMPTS times this at most


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
    """The object storage port (:class:`rag.core.ports.ObjectStorage`) over boto3: one client per
    process; every call bounded by connect/read timeouts and attempts."""

    def __init__(self, settings: Settings, *, read_timeout: float = READ_TIMEOUT_S) -> None:
        self.settings = settings
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.S3_ENDPOINT_URL,
            aws_access_key_id=settings.S3_ACCESS_KEY_ID,
            aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY.get_secret_value(),
            region_name=settings.S3_REGION,
            config=Config(
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=read_timeout,
                retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
                tcp_keepalive=True,
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

    def writer(self, bucket: str, *, owner: str = "", part_bytes: int = DEFAULT_PART_BYTES) -> BlobWriter:
        """A :class:`BlobWriter` for an object whose bytes arrive in pieces; its staging key is
        ``<STAGING_PREFIX><owner>/<random>`` (who is uploading, for operators)."""
        return BlobWriter(self, bucket, owner=owner, part_bytes=part_bytes)

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

    def discard_staged_before(self, bucket: str, cutoff: datetime, *, owner: str = "") -> int:
        """Abort the multipart uploads and delete the objects under :data:`STAGING_PREFIX` (of
        ``owner`` only, if given) begun before ``cutoff``: what uploads cut off by a crash left
        (a live upload discards its own). Returns how many."""
        prefix = f"{STAGING_PREFIX}{owner}/" if owner else STAGING_PREFIX
        removed = 0
        try:
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self._client.abort_multipart_upload(
                            Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed += 1
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=bucket, key=prefix) from None
        for info in list(self.list(bucket, prefix)):
            if info.last_modified < cutoff:
                self.delete(bucket, info.key)
                removed += 1
        return removed

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


class BlobWriter:
    """One object written while its bytes arrive, named by its content once they all have.

    ``feed`` only buffers; ``flush`` hashes the buffered part and uploads it (a multipart
    upload to a staging key under :data:`STAGING_PREFIX`, begun with the first full part);
    ``finish`` completes the upload and returns the sha256; ``store(key)`` makes ``key`` hold the
    content unless it does already (a small object: one PUT from memory; a large one: a
    server-side copy of the staging object). ``discard`` aborts the multipart upload or deletes
    the staging object and frees the buffer: call it always, after a success too; it is
    idempotent, and after it nothing more is written.

    Memory: at most one part plus the last chunk fed. The blocking methods (all but ``feed`` and
    ``head``) hold a lock, so a ``discard`` from a cancelled caller waits for a part in flight.
    """

    def __init__(
        self, store: BlobStore, bucket: str, *, owner: str = "", part_bytes: int = DEFAULT_PART_BYTES
    ) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"parts must be at least {MIN_PART_BYTES} bytes (S3)")
        self._store = store
        self._client = store._client
        self.bucket = bucket
        self.staging_key = f"{STAGING_PREFIX}{owner or '-'}/{uuid.uuid4().hex}"
        self.part_bytes = part_bytes
        self.size = 0
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._digest: str | None = None
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._staged = False  # the multipart upload is complete: the staging object exists
        self._closed = False
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> bool:
        """Buffer ``data`` (no I/O); whether a whole part is buffered (time to ``flush``)."""
        if self._closed or self._digest is not None:
            raise RuntimeError("this upload is finished or discarded")
        self._buffer += data
        self.size += len(data)
        return len(self._buffer) >= self.part_bytes

    def head(self, limit: int) -> bytes:
        """The first ``limit`` bytes; only before the first ``flush``."""
        if self._parts:
            raise RuntimeError("the head of the object was flushed already")
        return bytes(self._buffer[:limit])

    def flush(self) -> None:
        """Hash and upload what is buffered as the next part."""
        with self._lock:
            self._check_open()
            if not self._buffer:
                return
            self._hash.update(self._buffer)
            self._upload_part()

    def finish(self) -> str:
        """The content's sha256 (hex), once every byte is fed; a large object is now staged."""
        with self._lock:
            self._check_open()
            if self._digest is None:
                self._hash.update(self._buffer)
                if self._upload_id is not None:
                    if self._buffer:
                        self._upload_part()
                    try:
                        self._client.complete_multipart_upload(
                            Bucket=self.bucket,
                            Key=self.staging_key,
                            UploadId=self._upload_id,
                            MultipartUpload={"Parts": self._parts},
                        )
                    except (ClientError, BotoCoreError) as exc:
                        raise _translate(exc, bucket=self.bucket, key=self.staging_key) from None
                    self._staged = True
                self._digest = self._hash.hexdigest()
            return self._digest

    def store(self, key: str, *, content_type: str = "application/octet-stream") -> None:
        """Make ``key`` hold the content, unless it exists already (content-addressed: same bytes)."""
        with self._lock:
            self._check_open()
            if self._digest is None:
                raise RuntimeError("finish() the upload before storing it")
            if self._store.exists(self.bucket, key):
                return
            metadata = {"sha256": self._digest}
            try:
                if self._staged:
                    self._client.copy_object(
                        Bucket=self.bucket,
                        Key=key,
                        CopySource={"Bucket": self.bucket, "Key": self.staging_key},
                        MetadataDirective="REPLACE",
                        ContentType=content_type,
                        Metadata=metadata,
                    )
                else:
                    self._client.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=self._buffer,
                        ContentType=content_type,
                        Metadata=metadata,
                    )
            except (ClientError, BotoCoreError) as exc:
                raise _translate(exc, bucket=self.bucket, key=key) from None

    def discard(self) -> None:
        """Remove whatever was staged and free the buffer; idempotent, and final."""
        with self._lock:
            self._closed = True
            self._buffer = bytearray()
            try:
                if self._staged:
                    self._client.delete_object(Bucket=self.bucket, Key=self.staging_key)
                elif self._upload_id is not None:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=self.staging_key, UploadId=self._upload_id
                    )
            except (ClientError, BotoCoreError) as exc:
                error = _translate(exc, bucket=self.bucket, key=self.staging_key)
                if not isinstance(error, NotFound):
                    raise error from None
            self._staged = False
            self._upload_id = None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this upload was discarded")

    def _upload_part(self) -> None:
        # The bytearray goes to botocore as it is: no copy of the part.
        try:
            if self._upload_id is None:
                self._upload_id = self._client.create_multipart_upload(
                    Bucket=self.bucket, Key=self.staging_key
                )["UploadId"]
            number = len(self._parts) + 1
            etag = self._client.upload_part(
                Bucket=self.bucket,
                Key=self.staging_key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=self._buffer,
            )["ETag"]
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, bucket=self.bucket, key=self.staging_key) from None
        self._parts.append({"PartNumber": number, "ETag": etag})
        self._buffer = bytearray()
