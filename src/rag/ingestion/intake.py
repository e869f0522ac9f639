"""Receive a document's bytes: hash, sniff, store the blob, record the row (idempotently).

Blobs are content-addressed (``<tenant>/<sha256>``) and shared by the tenant's documents with
the same bytes. Storing a blob and recording a document that uses it happen under the blob's
lock, and so do the check that no document uses a blob any more and its deletion
(:meth:`DocumentStore.receive`, :meth:`DocumentStore.delete`): an upload and a deletion of the
same content never leave a document without its blob.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field

from rag.core.documents import DocumentRecord, Received
from rag.core.errors import InvalidInput, RagError, UnprocessableDocument
from rag.core.ports import DocumentStore, ObjectStorage, ObjectUpload
from rag.core.throttle import Slots
from rag.parsing import ParseLimits
from rag.parsing.sniff import SNIFF_PREFIX_BYTES, sniff_prefix

log = logging.getLogger(__name__)

DEFAULT_DEADLINE_S = 15 * 60.0
UNKNOWN_TYPE = "application/octet-stream"


def blob_key(tenant: str, digest: str) -> str:
    """Where a tenant's bytes with this sha256 are stored (shared by its documents with them)."""
    return f"{tenant}/{digest}"


class UploadSlots(Slots):
    """At most ``limit`` uploads at once in this process (UPLOAD_MAX_CONCURRENT); one more is
    :class:`Overloaded` at once (no queue: a waiting upload would hold its client's bytes and a
    connection)."""

    def __init__(self, limit: int = 8, *, retry_after_s: float = 1.0) -> None:
        super().__init__(limit, what="uploads", setting="UPLOAD_MAX_CONCURRENT", retry_after_s=retry_after_s)


@dataclass(frozen=True)
class Intake:
    documents: DocumentStore
    blobs: ObjectStorage
    bucket: str
    limits: ParseLimits = field(default_factory=ParseLimits)
    deadline_s: float = DEFAULT_DEADLINE_S
    uploads: UploadSlots = field(default_factory=UploadSlots)
    part_bytes: int | None = None  # of a streamed upload; None: the object storage's default

    def receive(
        self,
        data: bytes,
        *,
        tenant: str,
        source_uri: str | None = None,
        filename: str = "",
        title: str = "",
        metadata: dict[str, str] | None = None,
        reject_unsupported: bool = False,
    ) -> Received:
        """Store ``data`` for ``tenant``; the same content again is the same document.

        Uploads (``source_uri`` None) are content-addressed (``upload://<sha256>``), so a tenant
        uploading the same bytes twice gets one document. The type comes from the first bytes
        only (the parser decides the final one). With ``reject_unsupported`` an unreadable type
        fails at once (the uploader can fix it); otherwise it is recorded and the pipeline
        quarantines it with the reason (a batch never loses a file silently).
        """
        if len(data) > self.limits.max_bytes:
            raise InvalidInput(
                f"document is {len(data)} bytes; the limit is {self.limits.max_bytes}", field="size"
            )
        mime = self._content_type(data[:SNIFF_PREFIX_BYTES], reject_unsupported=reject_unsupported)
        digest = hashlib.sha256(data).hexdigest()
        key = blob_key(tenant, digest)

        def store() -> None:
            if not self.blobs.exists(self.bucket, key):
                self.blobs.put(self.bucket, key, data, content_type=mime)

        return self._record(
            tenant=tenant,
            source_uri=source_uri,
            digest=digest,
            size=len(data),
            mime=mime,
            title=title,
            metadata=metadata,
            store=store,
        )

    async def receive_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        tenant: str,
        max_bytes: int,
        title: str = "",
        metadata: dict[str, str] | None = None,
    ) -> Received:
        """Receive an upload while its bytes arrive: hashed and written to object storage part
        by part (one part in memory), never held whole. Like :meth:`receive` with
        ``reject_unsupported``: unreadable first bytes are InvalidInput before anything is
        stored. Past ``max_bytes`` it stops at once. At most ``uploads.limit`` run at once
        (Overloaded beyond). Whatever the outcome (error, cancellation), nothing staged stays.
        """
        with self.uploads.take():
            writer = (
                self.blobs.writer(self.bucket, owner=tenant)
                if self.part_bytes is None
                else self.blobs.writer(self.bucket, owner=tenant, part_bytes=self.part_bytes)
            )
            try:
                return await self._stream(
                    writer, chunks, tenant=tenant, max_bytes=max_bytes, title=title, metadata=metadata
                )
            finally:
                # Also after a success (the staging copy), and when the caller went away: the
                # discard runs in its thread to the end even if this task is cancelled again.
                discard = asyncio.ensure_future(asyncio.to_thread(writer.discard))
                try:
                    await asyncio.shield(discard)
                except RagError as exc:
                    log.warning("could not remove the staged upload %s: %s", writer.staging_key, exc)

    async def _stream(
        self,
        writer: ObjectUpload,
        chunks: AsyncIterable[bytes],
        *,
        tenant: str,
        max_bytes: int,
        title: str,
        metadata: dict[str, str] | None,
    ) -> Received:
        mime: str | None = None
        async for chunk in chunks:
            if writer.size + len(chunk) > max_bytes:
                raise InvalidInput(
                    f"upload exceeds the {max_bytes} byte limit (UPLOAD_MAX_BYTES)", field="chunk"
                )
            full = writer.feed(chunk)
            if mime is None and (full or writer.size >= SNIFF_PREFIX_BYTES):
                mime = await self._sniff_upload(writer)  # before the first byte is stored
            if full:
                await asyncio.to_thread(writer.flush)
        if writer.size == 0:
            raise InvalidInput(
                "no content was sent: stream the file's bytes after the metadata", field="chunk"
            )
        if mime is None:
            mime = await self._sniff_upload(writer)
        digest = await asyncio.to_thread(writer.finish)
        key, content_type = blob_key(tenant, digest), mime
        return await asyncio.to_thread(
            self._record,
            tenant=tenant,
            source_uri=None,
            digest=digest,
            size=writer.size,
            mime=mime,
            title=title,
            metadata=metadata,
            store=lambda: writer.store(key, content_type=content_type),
        )

    async def _sniff_upload(self, writer: ObjectUpload) -> str:
        head = writer.head(SNIFF_PREFIX_BYTES)
        return await asyncio.to_thread(self._content_type, head, reject_unsupported=True)

    def delete(self, document_ids: Iterable[uuid.UUID], *, tenant: str) -> list[DocumentRecord]:
        """Delete documents of ``tenant`` and each blob no document of it uses any more (a blob
        that cannot be deleted now is logged and left behind: unused, never missing)."""

        def drop(key: str) -> None:
            try:
                self.blobs.delete(self.bucket, key)
            except RagError as exc:
                log.warning("the blob %s of deleted documents was left behind: %s", key, exc)

        return self.documents.delete(document_ids, tenant=tenant, drop_blob=drop)

    @staticmethod
    def _content_type(head: bytes, *, reject_unsupported: bool) -> str:
        try:
            return sniff_prefix(head).value
        except UnprocessableDocument as exc:
            if reject_unsupported:
                raise InvalidInput(str(exc), field="content") from None
            return UNKNOWN_TYPE

    def _record(
        self,
        *,
        tenant: str,
        source_uri: str | None,
        digest: str,
        size: int,
        mime: str,
        title: str,
        metadata: dict[str, str] | None,
        store: Callable[[], None],
    ) -> Received:
        return self.documents.receive(
            tenant=tenant,
            source_uri=source_uri or f"upload://{digest}",
            title=title,  # empty: the pipeline takes the parsed title
            content_hash=digest,
            size_bytes=size,
            mime_type=mime,
            blob_key=blob_key(tenant, digest),
            metadata=metadata or {},
            deadline_s=self.deadline_s,
            store_blob=store,
        )
