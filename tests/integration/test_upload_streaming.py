"""Uploads stream to S3 (multipart, hashed on the way) on a real server over the real stack:
stored intact, memory bounded, limits enforced with nothing left behind, concurrency bounded,
and a deletion racing an upload of the same bytes never leaves a document without its blob."""

from __future__ import annotations

import hashlib
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest

from grpc_services.app import application
from grpc_services.servicers.documents import DocumentServicer
from rag.adapters.objectstore import MIN_PART_BYTES, STAGING_PREFIX, BlobStore
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.proto.rag.v1 import admin_pb2, admin_pb2_grpc, document_pb2, document_pb2_grpc
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration

PART = MIN_PART_BYTES
CHUNK = 256 * 1024
BLOB_LOCKS = 0x626C6F62  # the advisory-lock class of blob keys (rag.adapters.postgres.documents)


def text_bytes(size: int) -> bytes:
    """``size`` bytes of unique plain text (sniffed as text, never deduplicated by accident)."""
    line = f"Streaming upload line {uuid.uuid4()} about magnesium, zinc and iron.\n".encode()
    return (line * (size // len(line) + 1))[:size]


class Uploads:
    """A real server (no Airflow: nothing is ingested) and a channel to it."""

    def __init__(self, channel: grpc.Channel, tokens: JwtTokens, servicer: DocumentServicer) -> None:
        self.channel = channel
        self.stub = document_pb2_grpc.DocumentServiceStub(channel)
        self.tokens = tokens
        self.servicer = servicer

    def auth(self, tenant: str, role: Role = Role.USER) -> tuple[tuple[str, str], ...]:
        token = self.tokens.issue_access(Principal.of("uploader", tenant, role)).token
        return (("authorization", f"Bearer {token}"),)

    def messages(
        self, data: bytes, *, pause_after: int | None = None, resume: threading.Event | None = None
    ) -> Iterator[document_pb2.UploadRequest]:
        yield document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(filename="f.txt"))
        for i in range(0, len(data), CHUNK):
            if pause_after is not None and i >= pause_after:
                assert resume is not None
                resume.wait(60)
                pause_after = None
            yield document_pb2.UploadRequest(chunk=data[i : i + CHUNK])

    def upload(self, data: bytes, tenant: str) -> document_pb2.UploadResponse:
        return self.stub.Upload(self.messages(data), metadata=self.auth(tenant), timeout=120)

    def delete(self, document_id: str, tenant: str) -> bool:
        request = document_pb2.DeleteDocumentRequest(document_id=document_id)
        return self.stub.DeleteDocument(request, metadata=self.auth(tenant, Role.ADMIN), timeout=60).deleted


@contextmanager
def serving(grpc_loop: EventLoopThread, settings: Settings, **overrides: Any) -> Iterator[Uploads]:
    options = {"AIRFLOW_API_URL": None, "UPLOAD_PART_BYTES": PART} | overrides
    configured = settings.model_copy(update=options)
    manager = application(configured)
    app = grpc_loop.run(manager.__aenter__())
    try:
        servicer = next(s for s in app.servicers if isinstance(s, DocumentServicer))
        with (
            running_server(grpc_loop, configured, app.servicers, readiness=app.readiness) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            yield Uploads(channel, JwtTokens.from_settings(settings), servicer)
    finally:
        grpc_loop.run(manager.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def uploads(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[Uploads]:
    with serving(grpc_loop, settings, UPLOAD_MAX_BYTES=32 * 2**20, UPLOAD_MAX_CONCURRENT=4) as served:
        yield served


@pytest.fixture
def tenant(db: psycopg.Connection, blobs: BlobStore, settings: Settings) -> Iterator[str]:
    """A fresh tenant; its documents and blobs are removed afterwards."""
    name = f"st{uuid.uuid4().hex[:10]}"
    yield name
    db.execute("DELETE FROM documents WHERE tenant = %s", (name,))
    db.commit()
    for info in blobs.list(settings.S3_BUCKET_DOCUMENTS, f"{name}/"):
        blobs.delete(settings.S3_BUCKET_DOCUMENTS, info.key)


def staged(blobs: BlobStore, bucket: str, tenant: str) -> list[str]:
    """Staging objects and unfinished multipart uploads of ``tenant``'s uploads."""
    prefix = f"{STAGING_PREFIX}{tenant}/"
    parts = blobs._client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    return [u["Key"] for u in parts] + [o.key for o in blobs.list(bucket, prefix)]


def sha256_of(blobs: BlobStore, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    with blobs.open_stream(bucket, key) as body:
        while block := body.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def code_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as excinfo:
        call()
    return excinfo.value.code(), excinfo.value.details() or ""


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll until ``condition`` holds (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_large_upload_streams_in_parts_intact_with_bounded_memory(
    uploads: Uploads, tenant: str, blobs: BlobStore, settings: Settings, db: psycopg.Connection
) -> None:
    data = text_bytes(30 * 10**6)
    tracemalloc.start()
    try:
        response = uploads.upload(data, tenant)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One part (5 MiB) and a chunk or two, not the file (held whole it was 2-3x its size).
    assert peak < len(data) / 3, f"peak {peak / 2**20:.1f} MiB while uploading {len(data) / 2**20:.0f} MiB"
    digest = hashlib.sha256(data).hexdigest()
    document = response.document
    assert not response.deduplicated and document.content_hash == digest
    assert document.size_bytes == len(data) and document.mime_type == "text/plain"
    bucket = settings.S3_BUCKET_DOCUMENTS
    key = f"{tenant}/{digest}"
    assert blobs.stat(bucket, key).size == len(data) and sha256_of(blobs, bucket, key) == digest
    assert staged(blobs, bucket, tenant) == []
    row = db.execute("SELECT blob_key FROM documents WHERE id = %s", (document.id,)).fetchone()
    assert row == (key,)


def test_same_bytes_twice_is_one_document_and_one_blob(
    uploads: Uploads, tenant: str, blobs: BlobStore, settings: Settings
) -> None:
    for size in (11 * 2**20, 1000):  # multipart (staged, then copied) and one PUT
        data = text_bytes(size)
        first, second = uploads.upload(data, tenant), uploads.upload(data, tenant)
        assert not first.deduplicated and second.deduplicated
        assert second.document.id == first.document.id
    bucket = settings.S3_BUCKET_DOCUMENTS
    assert len(list(blobs.list(bucket, f"{tenant}/"))) == 2
    assert staged(blobs, bucket, tenant) == []


def test_over_the_limit_is_rejected_and_nothing_is_left(
    uploads: Uploads, tenant: str, blobs: BlobStore, settings: Settings, db: psycopg.Connection
) -> None:
    # Six parts are uploaded before the limit is reached: the multipart upload is aborted.
    code, details = code_of(lambda: uploads.upload(text_bytes(32 * 2**20 + 1), tenant))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "UPLOAD_MAX_BYTES" in details
    bucket = settings.S3_BUCKET_DOCUMENTS
    assert staged(blobs, bucket, tenant) == [] and list(blobs.list(bucket, f"{tenant}/")) == []
    assert db.execute("SELECT count(*) FROM documents WHERE tenant = %s", (tenant,)).fetchone() == (0,)


def test_junk_is_rejected_from_its_first_bytes(
    uploads: Uploads, tenant: str, blobs: BlobStore, settings: Settings
) -> None:
    """Rejected at once: the client is still holding back the rest of the file."""
    junk = bytes(range(256)) * (12 * 2**20 // 256)  # more than two parts of binary junk
    resume = threading.Event()
    try:
        code, details = code_of(
            lambda: uploads.stub.Upload(
                uploads.messages(junk, pause_after=CHUNK, resume=resume),
                metadata=uploads.auth(tenant),
                timeout=30,
            )
        )
    finally:
        resume.set()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("content:"), details
    assert staged(blobs, settings.S3_BUCKET_DOCUMENTS, tenant) == []


def test_a_cancelled_upload_leaves_no_staging_object_or_multipart_upload(
    uploads: Uploads, tenant: str, blobs: BlobStore, settings: Settings
) -> None:
    bucket = settings.S3_BUCKET_DOCUMENTS
    resume = threading.Event()
    data = text_bytes(3 * PART)
    call = uploads.stub.Upload.future(
        uploads.messages(data, pause_after=PART + CHUNK, resume=resume),
        metadata=uploads.auth(tenant),
        timeout=120,
    )
    try:
        wait_for(lambda: bool(staged(blobs, bucket, tenant)), "the first part to be uploaded")
        call.cancel()
        wait_for(lambda: not staged(blobs, bucket, tenant), "the multipart upload to be aborted")
    finally:
        resume.set()
    assert call.cancelled() and list(blobs.list(bucket, f"{tenant}/")) == []


def test_uploads_a_crash_cut_off_are_discarded_later(
    blobs: BlobStore, settings: Settings, tenant: str
) -> None:
    """A process that died mid-upload never discards its staging; cleanup does, by age."""
    bucket = settings.S3_BUCKET_DOCUMENTS
    begun, finished = (blobs.writer(bucket, owner=tenant, part_bytes=PART) for _ in range(2))
    for writer in (begun, finished):
        writer.feed(text_bytes(PART + 1))
        writer.flush()
    finished.finish()  # a staged object, not yet copied to its content address
    assert len(staged(blobs, bucket, tenant)) == 2
    assert blobs.discard_staged_before(bucket, datetime.now(UTC) - timedelta(hours=1), owner=tenant) == 0
    assert len(staged(blobs, bucket, tenant)) == 2
    assert blobs.discard_staged_before(bucket, datetime.now(UTC) + timedelta(hours=1), owner=tenant) == 2
    assert staged(blobs, bucket, tenant) == []


def test_concurrent_uploads_are_bounded_with_a_retry_hint(
    grpc_loop: EventLoopThread, settings: Settings, tenant: str
) -> None:
    with serving(grpc_loop, settings, UPLOAD_MAX_CONCURRENT=1) as served:
        resume = threading.Event()
        held = served.stub.Upload.future(
            served.messages(text_bytes(2 * CHUNK), pause_after=CHUNK, resume=resume),
            metadata=served.auth(tenant),
            timeout=120,
        )
        try:
            slots = served.servicer._intake.uploads
            wait_for(lambda: slots.in_use == 1 or held.done(), "the first upload to take the only slot")
            assert not held.done(), f"the first upload ended early: {held.exception()}"
            code, details = code_of(lambda: served.upload(text_bytes(100), tenant))
        finally:
            resume.set()
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
        assert "UPLOAD_MAX_CONCURRENT" in details and "retry in 1 s" in details
        assert not held.result(timeout=60).deduplicated
        assert served.upload(text_bytes(100), tenant).document.id  # the slot is free again


def test_a_stalled_upload_times_out(grpc_loop: EventLoopThread, settings: Settings, tenant: str) -> None:
    with serving(grpc_loop, settings, UPLOAD_IDLE_TIMEOUT_S=1.0) as served:
        resume = threading.Event()
        try:
            code, details = code_of(
                lambda: served.stub.Upload(
                    served.messages(text_bytes(2 * CHUNK), pause_after=CHUNK, resume=resume),
                    metadata=served.auth(tenant),
                    timeout=60,
                )
            )
        finally:
            resume.set()
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "UPLOAD_IDLE_TIMEOUT_S" in details


def _blob_lock_waiters(db: psycopg.Connection) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = %s AND objsubid = 2",
        (BLOB_LOCKS,),
    ).fetchone()
    db.commit()
    return int(row[0]) if row else 0


@pytest.mark.parametrize(
    ("deleter", "paused"),
    [("DeleteDocument", "upload"), ("DeleteDocument", "deleter"), ("SystemCleanup", "upload")],
)
def test_a_deletion_racing_an_upload_of_the_same_bytes_never_loses_the_blob(
    uploads: Uploads,
    tenant: str,
    blobs: BlobStore,
    settings: Settings,
    db: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    deleter: str,
    paused: str,
) -> None:
    """One side stops inside its critical step (the upload right after finding the blob there;
    the deletion right before dropping it) while the other runs. Before blob keys were locked,
    the other side went straight through and the upload recorded a document whose blob the
    deletion then removed."""
    bucket = settings.S3_BUCKET_DOCUMENTS
    data = text_bytes(2000)
    key = f"{tenant}/{hashlib.sha256(data).hexdigest()}"
    existing = uploads.upload(data, tenant).document
    if deleter == "SystemCleanup":  # the document was quarantined long ago (no trigger on INSERT)
        db.execute(
            "WITH gone AS (DELETE FROM documents WHERE id = %s RETURNING *)"
            " INSERT INTO documents (id, tenant, source_uri, content_hash, size_bytes, mime_type, blob_key,"
            "                        status, error_reason, updated_at)"
            " SELECT id, tenant, source_uri, content_hash, size_bytes, mime_type, blob_key, 'quarantined',"
            "        'unreadable', now() - interval '40 days' FROM gone",
            (existing.id,),
        )
        db.commit()
    store = uploads.servicer._intake.blobs
    reached, go = threading.Event(), threading.Event()
    method = "exists" if paused == "upload" else "delete"
    original = getattr(store, method)

    def pause(key_: str) -> None:
        if key_ == key and not reached.is_set():
            reached.set()
            go.wait(60)

    def pausing(bucket_: str, key_: str) -> Any:
        if paused == "deleter":
            pause(key_)
        result = original(bucket_, key_)
        if paused == "upload":
            pause(key_)
        return result

    monkeypatch.setattr(store, method, pausing)

    def upload() -> grpc.Future[Any]:
        return uploads.stub.Upload.future(uploads.messages(data), metadata=uploads.auth(tenant), timeout=120)

    def delete() -> grpc.Future[Any]:
        auth = uploads.auth(tenant, Role.ADMIN)
        if deleter == "SystemCleanup":
            admin = admin_pb2_grpc.AdminServiceStub(uploads.channel)
            return admin.SystemCleanup.future(
                admin_pb2.SystemCleanupRequest(days_old=30), metadata=auth, timeout=120
            )
        request = document_pb2.DeleteDocumentRequest(document_id=existing.id)
        return uploads.stub.DeleteDocument.future(request, metadata=auth, timeout=120)

    start_first, start_other = (upload, delete) if paused == "upload" else (delete, upload)
    first = start_first()
    try:
        wait_for(reached.is_set, f"the {paused} to reach its critical step")
        other = start_other()
        # The other side runs to its end, or waits for the blob's lock.
        wait_for(lambda: other.done() or _blob_lock_waiters(db) > 0, "the other side to run")
    finally:
        go.set()
    first.result(timeout=60)
    other.result(timeout=60)
    live = db.execute("SELECT id, blob_key FROM documents WHERE tenant = %s", (tenant,)).fetchall()
    db.commit()
    for document_id, blob_key in live:
        assert blobs.exists(bucket, blob_key), f"document {document_id} lost its blob {blob_key}"
    assert not live or live[0][1] == key
