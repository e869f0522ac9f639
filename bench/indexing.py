"""Ingest texts into a tenant through the product's ingestion path (Intake -> Pipeline).

The same objects the Airflow DAG's hook builds (``plugins/rag_hooks.py``): a received document
is stored in object storage and recorded, then parsed, chunked, embedded by Triton (batch
priority) and written with its BM25 postings; the BM25 statistics are refreshed at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from rag.adapters.postgres.documents import DocumentRepository
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Outcome, Pipeline
from rag.settings import Settings


@dataclass
class Ingestion:
    pool: ConnectionPool
    documents: DocumentRepository
    intake: Intake
    pipeline: Pipeline


@contextmanager
def ingestion(settings: Settings) -> Iterator[Ingestion]:
    """Intake and the pipeline the DAG's hook builds (:func:`rag.ingestion.assembly.build_pipeline`),
    with the default chunking."""
    from rag.adapters.objectstore import BlobStore
    from rag.adapters.postgres.pool import create_pool
    from rag.adapters.triton import BlockingTriton, TritonOptions
    from rag.core.chunking import ChunkingOptions
    from rag.ingestion.assembly import build_pipeline
    from rag.parsing.isolation import ParserPool
    from rag.parsing.limits import ParseLimits

    with (
        create_pool(settings, min_size=1, name="bench") as pool,
        BlockingTriton(TritonOptions(settings.TRITON_GRPC_URL, timeout_s=300.0)) as triton,
        ParserPool(ParseLimits.from_settings(settings)) as parsers,
    ):
        blobs = BlobStore(settings)
        documents = DocumentRepository(pool)
        pipeline = build_pipeline(
            pool=pool,
            blobs=blobs,
            bucket=settings.S3_BUCKET_DOCUMENTS,
            triton=triton,
            parser=parsers,
            chunking=ChunkingOptions(),
        )
        yield Ingestion(pool, documents, Intake(documents, blobs, settings.S3_BUCKET_DOCUMENTS), pipeline)


@dataclass
class IngestRun:
    documents: int = 0
    chunks: int = 0
    indexed: int = 0
    quarantined: int = 0
    receive_s: float = 0.0  # Intake.receive: hash, store the blob, record the row
    process_s: float = 0.0  # Pipeline: fetch, parse, chunk, embed, write
    refresh_s: float = 0.0  # BM25 statistics, once per run
    stages_s: dict[str, float] = field(default_factory=dict)  # summed over documents

    def add(self, outcome: Outcome) -> None:
        self.chunks += outcome.chunks
        self.indexed += outcome.status.value == "indexed"
        self.quarantined += outcome.status.value == "quarantined"
        for stage, seconds in outcome.seconds.items():
            self.stages_s[stage] = self.stages_s.get(stage, 0.0) + seconds


def ingest_texts(
    items: Sequence[tuple[str, str]],
    *,
    tenant: str,
    ingestion: Ingestion,
    batch: int = 256,
    per_document: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> IngestRun:
    """Ingest ``(source_uri, text)`` pairs as plain-text documents of ``tenant``.

    Already indexed content is a no-op (the intake is idempotent by content hash). Documents
    go through ``Pipeline.process_many`` in batches of ``batch`` (``per_document``: one
    ``Pipeline.process`` call per document, the path before process_many existed).
    """
    run = IngestRun(documents=len(items))
    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        began = time.perf_counter()
        ids: list[uuid.UUID] = []
        for uri, text in part:
            received = ingestion.intake.receive(text.encode("utf-8"), tenant=tenant, source_uri=uri)
            if received.document.status.value == "received":
                ids.append(received.document.id)
        run.receive_s += time.perf_counter() - began
        began = time.perf_counter()
        if per_document:
            outcomes = [ingestion.pipeline.process(i) for i in ids]
        else:
            outcomes = ingestion.pipeline.process_many(ids)
        run.process_s += time.perf_counter() - began
        for outcome in outcomes:
            run.add(outcome)
        if progress:
            progress(start + len(part), len(items))
    began = time.perf_counter()
    ingestion.documents.refresh_lexical_statistics()
    run.refresh_s = time.perf_counter() - began
    return run


def documents_by_source(pool: ConnectionPool, tenant: str) -> dict[str, str]:
    """Document id (UUID text) -> source URI, for a tenant."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT id, source_uri FROM documents WHERE tenant = %s", (tenant,)).fetchall()
    return {str(i): str(uri) for i, uri in rows}


def chunk_texts(pool: ConnectionPool, tenant: str) -> list[str]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT c.text FROM chunks c WHERE c.tenant = %s ORDER BY c.document_id, c.ordinal", (tenant,)
        ).fetchall()
    return [str(r[0]) for r in rows]
