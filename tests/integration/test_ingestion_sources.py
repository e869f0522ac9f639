"""``receive_source`` on the real stack: ``delete_missing`` stays inside the source's own path
components, locally and in S3."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from rag.adapters.objectstore import BlobStore
from rag.ingestion.intake import Intake
from rag.ingestion.sources import SourcePolicy, receive_source
from rag.settings import Settings

pytestmark = pytest.mark.integration


def _uris(intake: Intake, tenant: str, prefix: str) -> set[str]:
    return set(intake.documents.source_uris(tenant=tenant, prefix=prefix))


def test_delete_missing_respects_local_path_components(intake: Intake, tmp_path: Path) -> None:
    tenant = f"src{uuid.uuid4().hex[:8]}"
    root = tmp_path / "corpus"
    (root / "dir").mkdir(parents=True)
    (root / "dir2").mkdir()
    texts = {
        "a.md": "# A\n\nalpha",
        "a.md.bak": "# B\n\nbeta",
        "dir/x.md": "# X\n\nxi",
        "dir2/y.md": "# Y\n\nyo",
    }
    for name, text in texts.items():
        (root / name).write_text(f"{text} {tenant}")
    policy = SourcePolicy(roots=(tmp_path.resolve(),))
    everything = receive_source(intake, str(root), tenant=tenant, delete_missing=True, policy=policy)
    assert len(everything.pending) == 4

    single = receive_source(intake, str(root / "a.md"), tenant=tenant, delete_missing=True, policy=policy)
    folder = receive_source(intake, str(root / "dir"), tenant=tenant, delete_missing=True, policy=policy)
    assert (single.unchanged, single.deleted, folder.unchanged, folder.deleted) == (1, [], 1, [])

    (root / "dir" / "x.md").unlink()
    (root / "a.md").rename(root / "a.txt")  # a.md is gone, a.md.bak stays
    gone_x = receive_source(intake, str(root / "dir"), tenant=tenant, delete_missing=True, policy=policy)
    assert len(gone_x.deleted) == 1
    left = {uri.removeprefix(root.resolve().as_uri()) for uri in _uris(intake, tenant, "file://")}
    assert left == {"/a.md", "/a.md.bak", "/dir2/y.md"}


def test_delete_missing_respects_s3_key_components(
    intake: Intake, blobs: BlobStore, settings: Settings
) -> None:
    tenant = f"src{uuid.uuid4().hex[:8]}"
    bucket, top = settings.S3_BUCKET_DOCUMENTS, f"test-sources-{uuid.uuid4().hex[:8]}"
    keys = [f"{top}/docs/x.md", f"{top}/docs2/y.md", f"{top}/docs.md"]
    for key in keys:
        blobs.put(bucket, key, f"# {key}\n\n{tenant}".encode())
    # The system's own bucket, allowed here only to have a bucket to test in.
    policy = SourcePolicy(buckets=frozenset({bucket}))
    try:
        whole = receive_source(
            intake, f"s3://{bucket}/{top}/", tenant=tenant, delete_missing=True, policy=policy
        )
        assert len(whole.pending) == 3
        docs = receive_source(
            intake, f"s3://{bucket}/{top}/docs", tenant=tenant, delete_missing=True, policy=policy
        )
        assert (docs.unchanged, docs.pending, docs.deleted) == (1, [], [])
        blobs.delete(bucket, keys[0])
        docs = receive_source(
            intake, f"s3://{bucket}/{top}/docs", tenant=tenant, delete_missing=True, policy=policy
        )
        assert len(docs.deleted) == 1
        assert _uris(intake, tenant, f"s3://{bucket}/{top}/") == {f"s3://{bucket}/{k}" for k in keys[1:]}
    finally:
        for key in keys:
            blobs.delete(bucket, key)


def test_an_object_store_outage_stops_the_source_instead_of_marking_files_unreadable(
    intake: Intake, settings: Settings, tmp_path: Path
) -> None:
    """With object storage down no file can be stored: receiving raises Unavailable (the DAG
    task fails and is retried) instead of reporting every file unreadable and going on, which
    ended runs green with files never recorded; once it is back, the same call records them all."""
    from dataclasses import replace
    from urllib.parse import urlsplit

    from rag.core.errors import Unavailable
    from tests.fixtures.proxy import TcpProxy

    tenant = f"src{uuid.uuid4().hex[:8]}"
    root = tmp_path / "corpus"
    root.mkdir()
    for n in range(3):
        (root / f"{n}.txt").write_text(f"Note {n} for {tenant}")
    policy = SourcePolicy(roots=(tmp_path.resolve(),))
    parts = urlsplit(settings.S3_ENDPOINT_URL)
    assert parts.hostname is not None and parts.port is not None
    with TcpProxy(parts.hostname, parts.port) as proxy:
        down = BlobStore(
            settings.model_copy(update={"S3_ENDPOINT_URL": f"http://{proxy.address}"}), read_timeout=0.5
        )
        proxied = replace(intake, blobs=down)
        proxy.stop()
        with pytest.raises(Unavailable):
            receive_source(proxied, str(root), tenant=tenant, delete_missing=False, policy=policy)
        assert _uris(intake, tenant, "file://") == set()
        proxy.start()
        report = receive_source(proxied, str(root), tenant=tenant, delete_missing=False, policy=policy)
    assert (len(report.pending), report.rejected) == (3, {})
    assert len(_uris(intake, tenant, "file://")) == 3
