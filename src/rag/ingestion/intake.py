"""Receive a document's bytes: hash, sniff, store the blob, record the row (idempotently)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres.documents import DocumentRepository, Received
from rag.core.errors import InvalidInput, UnprocessableDocument
from rag.parsing import ParseLimits, sniff

DEFAULT_DEADLINE_S = 15 * 60.0


@dataclass(frozen=True)
class Intake:
    documents: DocumentRepository
    blobs: BlobStore
    bucket: str
    limits: ParseLimits = field(default_factory=ParseLimits)
    deadline_s: float = DEFAULT_DEADLINE_S

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
        uploading the same bytes twice gets one document. With ``reject_unsupported`` an
        unreadable type fails at once (the uploader can fix it); otherwise it is recorded and
        the pipeline quarantines it with the reason (a batch never loses a file silently).
        """
        if len(data) > self.limits.max_bytes:
            raise InvalidInput(
                f"document is {len(data)} bytes; the limit is {self.limits.max_bytes}", field="size"
            )
        digest = hashlib.sha256(data).hexdigest()
        try:
            kind, _ = sniff(data, self.limits)
            mime = kind.value
        except UnprocessableDocument as exc:
            if reject_unsupported:
                raise InvalidInput(str(exc), field="content") from None
            mime = "application/octet-stream"
        blob_key = f"{tenant}/{digest}"
        if not self.blobs.exists(self.bucket, blob_key):
            self.blobs.put(self.bucket, blob_key, data, content_type=mime)
        return self.documents.receive(
            tenant=tenant,
            source_uri=source_uri or f"upload://{digest}",
            title=title,  # empty: the pipeline takes the parsed title
            content_hash=digest,
            size_bytes=len(data),
            mime_type=mime,
            blob_key=blob_key,
            metadata=metadata or {},
            deadline_s=self.deadline_s,
        )
