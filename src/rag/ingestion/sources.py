"""Where a batch ingestion reads from: a local path, or an S3 prefix (``s3://bucket/prefix``).

A source reads only what the settings allow (:class:`SourcePolicy`): a local path must resolve,
symlinks and ``..`` followed, into one of ``INGEST_ALLOWED_ROOTS``, never into the stack's state
directory (``RAG_STATE_DIR``) nor a hidden file or folder; an S3 source must be in one of
``INGEST_ALLOWED_BUCKETS``, never one of RAG System's own buckets. Each file is checked again
where it is read, so a symlink inside a root that points out of it is refused, not followed.

A source covers whole path components: ``a.md`` is that file (not ``a.md.bak``), ``docs`` and
``s3://b/docs`` are that folder (not ``docs2/``), so ``delete_missing`` deletes only documents
whose file was inside the source.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from rag.core.errors import DeadlineExceeded, InvalidInput, Overloaded, RagError, Unavailable
from rag.core.ports import ObjectStorage
from rag.ingestion.intake import Intake

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceItem:
    uri: str
    name: str
    size: int


@dataclass(frozen=True)
class SourcePolicy:
    """What a source may read: resolved root folders, buckets, and what is never read."""

    roots: tuple[Path, ...] = ()
    buckets: frozenset[str] = frozenset()
    state_dirs: tuple[Path, ...] = ()
    system_buckets: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> SourcePolicy:
        return cls(
            roots=tuple(p.expanduser().resolve() for p in settings.INGEST_ALLOWED_ROOTS),
            buckets=frozenset(settings.INGEST_ALLOWED_BUCKETS),
            state_dirs=(settings.RAG_STATE_DIR.expanduser().resolve(),),
            system_buckets=frozenset(
                {settings.S3_BUCKET_DOCUMENTS, settings.S3_BUCKET_BACKUPS, settings.S3_BUCKET_MODELS}
            ),
        )

    def check_path(self, path: Path) -> Path:
        """``path`` resolved (symlinks and ``..`` followed) if a source may read it."""
        resolved = path.expanduser().resolve()
        for state in self.state_dirs:
            if resolved.is_relative_to(state):
                raise InvalidInput(
                    f"{path} is inside the stack's state directory {state} (RAG_STATE_DIR), "
                    "which is never ingested",
                    field="source",
                )
        root = next((r for r in self.roots if resolved.is_relative_to(r)), None)
        if root is None:
            allowed = ", ".join(map(str, self.roots)) or "none"
            raise InvalidInput(
                f"{path} is not inside a folder listed in INGEST_ALLOWED_ROOTS (now: {allowed}); "
                "move the files there or add their folder to that setting",
                field="source",
            )
        hidden = next((part for part in resolved.relative_to(root).parts if part.startswith(".")), None)
        if hidden is not None:
            raise InvalidInput(f"{path} is in the hidden {hidden!r}, which is never ingested", field="source")
        return resolved

    def check_bucket(self, bucket: str) -> None:
        if bucket in self.system_buckets:
            raise InvalidInput(
                f"s3://{bucket} is one of RAG System's own buckets (S3_BUCKET_DOCUMENTS, "
                "S3_BUCKET_BACKUPS, S3_BUCKET_MODELS), which are never ingested",
                field="source",
            )
        if bucket not in self.buckets:
            allowed = ", ".join(sorted(self.buckets)) or "none"
            raise InvalidInput(
                f"bucket {bucket!r} is not listed in INGEST_ALLOWED_BUCKETS (now: {allowed}); "
                "add it to that setting to ingest from it",
                field="source",
            )


@dataclass(frozen=True)
class Source:
    """A checked source: a resolved local file or folder, or a bucket and key prefix."""

    kind: str  # "file", "folder" or "s3"
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""

    @property
    def uri(self) -> str:
        """The source as a URI prefix of its documents' ``source_uri`` (a folder ends with /)."""
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.prefix}"
        assert self.path is not None
        uri = self.path.as_uri()
        return uri if self.kind == "file" or uri.endswith("/") else uri + "/"

    def covers(self, uri: str) -> bool:
        """Whether ``uri`` is inside the source, on path-component boundaries."""
        base = self.uri
        if self.kind == "file":
            return uri == base
        if base.endswith("/") or (self.kind == "s3" and not self.prefix):
            return uri.startswith(base)
        # An S3 prefix without a final / is the object of that name or the "folder" of it.
        return uri == base or uri.startswith(base + "/")


def parse_source(source: str, policy: SourcePolicy) -> Source:
    """The checked source; :class:`InvalidInput` names the param and the setting that refused it."""
    text = source.strip()
    if not text:
        raise InvalidInput("must name a local path or an s3://bucket/prefix", field="source")
    if text.startswith("s3://"):
        parts = urlsplit(text)
        if not parts.netloc:
            raise InvalidInput("s3 sources look like s3://bucket/prefix", field="source")
        policy.check_bucket(parts.netloc)
        return Source("s3", bucket=parts.netloc, prefix=parts.path.lstrip("/"))
    if "://" in text and not text.startswith("file://"):
        raise InvalidInput(f"{text!r}: only local paths, file:// and s3:// sources are read", field="source")
    path = policy.check_path(Path(text.removeprefix("file://")))
    if not path.exists():
        raise InvalidInput(f"{path} does not exist", field="source")
    if path.is_file():
        return Source("file", path=path)
    if path.is_dir():
        return Source("folder", path=path)
    raise InvalidInput(f"{path} is neither a regular file nor a folder", field="source")


def list_source(source: Source, blobs: ObjectStorage | None) -> Iterator[SourceItem]:
    if source.kind == "file":
        assert source.path is not None
        yield SourceItem(source.path.as_uri(), source.path.name, source.path.stat().st_size)
        return
    if source.kind == "folder":
        root = source.path
        assert root is not None
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if not any(part.startswith(".") for part in path.relative_to(root).parts):
                yield SourceItem(path.as_uri(), path.name, path.lstat().st_size)
        return
    if blobs is None:
        raise InvalidInput("object storage is not configured", field="source")
    for info in blobs.list(source.bucket, source.prefix):
        uri = f"s3://{source.bucket}/{info.key}"
        if not info.key.endswith("/") and source.covers(uri):
            yield SourceItem(uri, info.key.rsplit("/", 1)[-1], info.size)


def read_item(item: SourceItem, blobs: ObjectStorage | None, policy: SourcePolicy) -> bytes:
    """The item's bytes; a local file is checked against ``policy`` again where it is read."""
    if item.uri.startswith("file://"):
        path = policy.check_path(Path(url2pathname(urlsplit(item.uri).path)))
        # A file swapped for a symlink after the check is refused, not followed; a FIFO or a
        # device is refused instead of blocking the reader.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with open(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InvalidInput(f"{path} is not a regular file", field="source")
            return file.read()
    bucket, _, key = item.uri.removeprefix("s3://").partition("/")
    policy.check_bucket(bucket)
    if blobs is None:
        raise InvalidInput("object storage is not configured", field="source")
    return blobs.get(bucket, key)


# Errors of a dependency, not of a file: receiving the source stops (receiving again is
# idempotent: unchanged files are recognised by their hash). Counting them as unreadable files
# would end the run green with those files never recorded.
TRANSIENT = (Unavailable, DeadlineExceeded, Overloaded)


@dataclass
class ReceiveReport:
    pending: list[uuid.UUID] = field(default_factory=list)  # new or changed
    documents: list[uuid.UUID] = field(default_factory=list)  # every file's document, changed or not
    unchanged: int = 0
    rejected: dict[str, str] = field(default_factory=dict)
    deleted: list[uuid.UUID] = field(default_factory=list)


def receive_source(
    intake: Intake, source: str, *, tenant: str, delete_missing: bool, policy: SourcePolicy
) -> ReceiveReport:
    """Receive every file of ``source``; documents whose file is gone are deleted (optionally).

    A source ``policy`` refuses raises :class:`InvalidInput` before anything is read. An outage
    of object storage or the database (:data:`TRANSIENT`) is raised as it is. A file that
    cannot be read (or that resolves out of the allowed roots) is reported, never silently
    skipped; unreadable formats are received and then quarantined by the pipeline with their
    reason.
    """
    checked = parse_source(source, policy)
    report = ReceiveReport()
    seen: set[str] = set()
    for item in list_source(checked, intake.blobs):
        seen.add(item.uri)
        try:
            received = intake.receive(
                read_item(item, intake.blobs, policy),
                tenant=tenant,
                source_uri=item.uri,
                filename=item.name,
            )
        except TRANSIENT:
            raise  # a dependency is down, not the file: the caller retries the whole source
        except (RagError, OSError) as exc:
            log.warning("cannot receive %s: %s", item.uri, exc)
            report.rejected[item.uri] = str(exc)
            continue
        report.documents.append(received.document.id)
        if received.changed:
            report.pending.append(received.document.id)
        else:
            report.unchanged += 1
    if delete_missing:
        existing = intake.documents.source_uris(tenant=tenant, prefix=checked.uri)
        gone = [doc_id for uri, doc_id in existing.items() if checked.covers(uri) and uri not in seen]
        report.deleted = [d.id for d in intake.documents.delete(gone, tenant=tenant)]
    return report
