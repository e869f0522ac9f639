"""Intake and ``receive_source`` over in-memory ports: content-addressed blobs shared by the
documents with the same bytes and dropped with the last of them, streamed uploads that leave
nothing staged, and a source received again: changed files pending, missing files' documents
deleted, a file out of the allowed roots reported, an outage raised."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rag.core.errors import InvalidInput, Unavailable
from rag.ingestion.intake import Intake, blob_key
from rag.ingestion.sources import SourcePolicy, receive_source
from tests.unit.fakes import FakeDocumentStore, FakeObjectStorage

BUCKET = "documents"


@pytest.fixture
def intake() -> Intake:
    return Intake(FakeDocumentStore(), FakeObjectStorage(), BUCKET)


def blobs_of(intake: Intake) -> set[str]:
    assert isinstance(intake.blobs, FakeObjectStorage)
    return {key for bucket, key in intake.blobs.objects if bucket == BUCKET}


def test_a_blob_is_shared_by_its_documents_and_dropped_with_the_last(intake: Intake) -> None:
    first = intake.receive(b"# Same\n\nbytes", tenant="acme", source_uri="file:///a.md").document
    second = intake.receive(b"# Same\n\nbytes", tenant="acme", source_uri="file:///b.md").document
    other = intake.receive(b"# Same\n\nbytes", tenant="globex", source_uri="file:///a.md").document
    assert first.id != second.id and first.blob_key == second.blob_key == blob_key("acme", first.content_hash)
    assert blobs_of(intake) == {f"acme/{first.content_hash}", f"globex/{first.content_hash}"}
    assert [d.id for d in intake.delete([first.id], tenant="acme")] == [first.id]
    assert f"acme/{first.content_hash}" in blobs_of(intake)  # the second document still uses it
    assert intake.delete([other.id], tenant="acme") == []  # another tenant's document is not deleted
    intake.delete([second.id], tenant="acme")
    assert blobs_of(intake) == {f"globex/{first.content_hash}"}


def test_an_upload_without_a_source_is_content_addressed(intake: Intake) -> None:
    received = intake.receive(b"plain words", tenant="acme", title="Notes", metadata={"k": "v"})
    again = intake.receive(b"plain words", tenant="acme")
    assert received.document.source_uri == f"upload://{received.document.content_hash}"
    assert (again.document.id, again.changed) == (received.document.id, False)
    assert (received.document.title, received.document.metadata) == ("Notes", {"k": "v"})


def test_too_large_or_unreadable_content_is_refused_before_anything_is_stored() -> None:
    intake = Intake(FakeDocumentStore(), FakeObjectStorage(), BUCKET)
    with pytest.raises(InvalidInput, match="size: document is"):
        intake.receive(b"x" * (intake.limits.max_bytes + 1), tenant="acme")
    with pytest.raises(InvalidInput, match="content: binary content"):
        intake.receive(b"\x00\x01\x02 junk" * 50, tenant="acme", reject_unsupported=True)
    assert blobs_of(intake) == set()


async def _parts(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_a_streamed_upload_is_stored_under_its_content_and_nothing_stays_staged(intake: Intake) -> None:
    received = asyncio.run(
        intake.receive_stream(_parts(b"# Title\n\n", b"streamed body"), tenant="acme", max_bytes=100)
    )
    assert received.changed and blobs_of(intake) == {f"acme/{received.document.content_hash}"}
    with pytest.raises(InvalidInput, match="exceeds the 10 byte limit"):
        asyncio.run(intake.receive_stream(_parts(b"# Title\n\n", b"too long"), tenant="acme", max_bytes=10))
    assert isinstance(intake.blobs, FakeObjectStorage)
    assert [u.discarded for u in intake.blobs.uploads] == [True, True]
    assert intake.uploads.in_use == 0


def test_a_source_received_again_deletes_the_documents_of_missing_files(
    intake: Intake, tmp_path: Path
) -> None:
    root = tmp_path / "inbox"
    (root / "dir").mkdir(parents=True)
    for name in ("a.md", "b.md", "dir/c.md"):
        (root / name).write_text(f"# {name}\n\ntext of {name}")
    policy = SourcePolicy(roots=(root.resolve(),))
    first = receive_source(intake, str(root), tenant="acme", delete_missing=True, policy=policy)
    assert (len(first.pending), first.unchanged, first.rejected, first.deleted) == (3, 0, {}, [])
    (root / "b.md").unlink()
    (root / "a.md").write_text("# a.md\n\nnew text")
    second = receive_source(intake, str(root), tenant="acme", delete_missing=True, policy=policy)
    assert (len(second.pending), second.unchanged) == (1, 1)
    assert second.pending == [first.documents[0]]  # a.md changed: the same document again
    assert second.deleted == [first.documents[1]]  # b.md is gone
    assert sorted(intake.documents.source_uris(tenant="acme", prefix=root.as_uri())) == [
        (root / "a.md").as_uri(),
        (root / "dir" / "c.md").as_uri(),
    ]
    (tmp_path / "outside.md").write_text("# not to be read")
    (root / "link.md").symlink_to(tmp_path / "outside.md")  # points out of the allowed root
    third = receive_source(intake, str(root), tenant="acme", delete_missing=False, policy=policy)
    assert list(third.rejected) == [(root / "link.md").as_uri()]
    assert "INGEST_ALLOWED_ROOTS" in third.rejected[(root / "link.md").as_uri()]
    assert third.unchanged == 2


class StorageDown(FakeObjectStorage):
    def exists(self, bucket: str, key: str) -> bool:
        raise Unavailable("object storage is unreachable")


def test_an_outage_stops_the_source_and_records_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A")
    documents = FakeDocumentStore()
    intake = Intake(documents, StorageDown(), BUCKET)
    policy = SourcePolicy(roots=(tmp_path.resolve(),))
    with pytest.raises(Unavailable, match="unreachable"):
        receive_source(intake, str(tmp_path), tenant="acme", delete_missing=False, policy=policy)
    assert documents.records == {}
