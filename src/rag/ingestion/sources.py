"""Where a batch ingestion reads from: a local path, or an S3 prefix (``s3://bucket/prefix``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rag.adapters.objectstore import BlobStore
from rag.core.errors import InvalidInput, RagError
from rag.ingestion.intake import Intake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceItem:
    uri: str
    name: str
    size: int


def parse_source(source: str) -> tuple[str, str]:
    """("s3", "bucket/prefix") or ("file", "/abs/path"); the error names the param."""
    text = source.strip()
    if not text:
        raise InvalidInput("must name a local path or an s3://bucket/prefix", field="source")
    if text.startswith("s3://"):
        parts = urlsplit(text)
        if not parts.netloc:
            raise InvalidInput("s3 sources look like s3://bucket/prefix", field="source")
        return "s3", f"{parts.netloc}/{parts.path.lstrip('/')}"
    path = Path(text.removeprefix("file://")).expanduser().resolve()
    if not path.exists():
        raise InvalidInput(f"{path} does not exist", field="source")
    return "file", str(path)


def list_source(source: str, blobs: BlobStore | None) -> Iterator[SourceItem]:
    kind, where = parse_source(source)
    if kind == "file":
        root = Path(where)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if any(
                part.startswith(".")
                for part in path.relative_to(root.parent if root.is_file() else root).parts
            ):
                continue
            yield SourceItem(path.as_uri(), path.name, path.stat().st_size)
        return
    if blobs is None:
        raise InvalidInput("object storage is not configured", field="source")
    bucket, _, prefix = where.partition("/")
    for info in blobs.list(bucket, prefix):
        if not info.key.endswith("/"):
            yield SourceItem(f"s3://{bucket}/{info.key}", info.key.rsplit("/", 1)[-1], info.size)


def read_item(item: SourceItem, blobs: BlobStore | None) -> bytes:
    if item.uri.startswith("file://"):
        return Path(urlsplit(item.uri).path).read_bytes()
    assert blobs is not None
    bucket, _, key = item.uri.removeprefix("s3://").partition("/")
    return blobs.get(bucket, key)


def source_prefix(source: str) -> str:
    """The URI prefix that documents from ``source`` carry (to find ones deleted at the source)."""
    kind, where = parse_source(source)
    if kind == "s3":
        return f"s3://{where}"
    path = Path(where)
    return path.as_uri() if path.is_file() else path.as_uri().rstrip("/") + "/"


@dataclass
class ReceiveReport:
    pending: list[uuid.UUID] = field(default_factory=list)
    unchanged: int = 0
    rejected: dict[str, str] = field(default_factory=dict)
    deleted: list[uuid.UUID] = field(default_factory=list)


def receive_source(intake: Intake, source: str, *, tenant: str, delete_missing: bool) -> ReceiveReport:
    """Receive every file of ``source``; documents whose file is gone are deleted (optionally).

    A file that cannot even be read is reported, never silently skipped; unreadable formats are
    received and then quarantined by the pipeline with their reason.
    """
    report = ReceiveReport()
    seen: set[str] = set()
    for item in list_source(source, intake.blobs):
        seen.add(item.uri)
        try:
            received = intake.receive(
                read_item(item, intake.blobs), tenant=tenant, source_uri=item.uri, filename=item.name
            )
        except (RagError, OSError) as exc:
            log.warning("cannot receive %s: %s", item.uri, exc)
            report.rejected[item.uri] = str(exc)
            continue
        if received.changed:
            report.pending.append(received.document.id)
        else:
            report.unchanged += 1
    if delete_missing:
        existing = intake.documents.source_uris(tenant=tenant, prefix=source_prefix(source))
        gone = [doc_id for uri, doc_id in existing.items() if uri not in seen]
        report.deleted = [d.id for d in intake.documents.delete(gone, tenant=tenant)]
    return report
