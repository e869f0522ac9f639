"""The ingestion pipeline assembled from a process's connections, and one batch run through it.

Airflow's ingestion tasks (through ``RagHook``, which only opens the connections) call
:func:`build_pipeline` and :func:`process_batch`; the gRPC upload path shares the
:class:`~rag.ingestion.pipeline.Pipeline` and :class:`~rag.ingestion.intake.Intake` they wire.
Chunks are embedded by Triton at batch priority, under the serving embedding index version.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from rag.adapters.postgres.documents import DocumentRepository
from rag.adapters.postgres.indexes import IndexRegistry
from rag.core.chunking import ChunkingOptions
from rag.core.documents import EMBEDDING_DIMENSION, MAX_ATTEMPTS
from rag.core.errors import Unavailable
from rag.core.ports import Priority
from rag.ingestion.pipeline import Outcome, Pipeline

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from rag.adapters.objectstore import BlobStore
    from rag.adapters.triton import BlockingTriton
    from rag.parsing.extraction import DocumentParser

log = logging.getLogger(__name__)


def serving_index_version(pool: ConnectionPool) -> str:
    """The serving embedding index version; on a fresh database, the packaged embedder's
    (recorded as the first active version)."""
    from rag.models import artifacts

    registry = IndexRegistry(pool)
    active = registry.active()
    if active is not None:
        return active.model_version
    path = artifacts.default_embedder_path()
    version = artifacts.model_version(path, artifacts.DEFAULT_EMBEDDER_NAME)
    return registry.ensure_active(version, EMBEDDING_DIMENSION).model_version


def build_pipeline(
    *,
    pool: ConnectionPool,
    blobs: BlobStore,
    bucket: str,
    triton: BlockingTriton,
    parser: DocumentParser,
    chunking: ChunkingOptions,
    model_version: str | None = None,
    max_attempts: int | None = None,
    owner: str | None = None,
) -> Pipeline:
    """The pipeline over these connections; ``model_version`` defaults to the serving one,
    ``max_attempts`` to the repository's cap, ``owner`` (who signs the claims) to none."""
    return Pipeline(
        documents=DocumentRepository(pool),
        blobs=blobs,
        bucket=bucket,
        embed=lambda texts: triton.embed(texts, priority=Priority.BATCH),
        parser=parser,
        model_version=model_version or serving_index_version(pool),
        chunking=chunking,
        max_attempts=max_attempts or MAX_ATTEMPTS,
        owner=owner,
    )


class ClaimRelease(Protocol):
    def release_claims(self, document_ids: Sequence[uuid.UUID], *, owner: str) -> list[uuid.UUID]: ...


class BatchPipeline(Protocol):
    """What :func:`process_batch` needs of a :class:`Pipeline`."""

    @property
    def documents(self) -> ClaimRelease: ...

    @property
    def owner(self) -> str | None: ...

    def process_many(self, document_ids: Sequence[uuid.UUID]) -> list[Outcome]: ...


def process_batch(document_ids: Sequence[str], pipeline: Callable[[], BatchPipeline]) -> dict[str, int]:
    """One mapped ingestion task: ``pipeline()`` over ``document_ids`` (their chunks embedded
    together), each outcome logged; the count of documents per resulting status. Claims the
    pipeline's owner (the task instance) still holds from an earlier try, which died with them,
    are given back first. An empty batch (the one of a run with nothing to process) builds no
    pipeline.

    Raises :class:`~rag.core.errors.Unavailable` after the batch when a dependency was down for
    any of its documents (they are back to ``received``, their attempts kept), so that Airflow
    retries the task with backoff; the documents it finished stay finished."""
    if not document_ids:
        return {}
    ids = [uuid.UUID(doc_id) for doc_id in document_ids]
    batch = pipeline()
    if batch.owner is not None:
        released = batch.documents.release_claims(ids, owner=batch.owner)
        if released:
            log.warning("took back %d claims an earlier try of %s left behind", len(released), batch.owner)
    counts: dict[str, int] = {}
    outages: list[str] = []
    for outcome in batch.process_many(ids):
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
        timing = " ".join(f"{k}={v:.2f}s" for k, v in outcome.seconds.items())
        peak = f"parser_rss={outcome.peak_rss_bytes / 2**20:.0f}MiB" if outcome.peak_rss_bytes else ""
        log.log(
            logging.WARNING if outcome.outage else logging.INFO,
            "%s: %s chunks=%d %s %s %s",
            outcome.document_id,
            outcome.status.value,
            outcome.chunks,
            timing,
            peak,
            outcome.reason or "",
        )
        if outcome.outage:
            outages.append(outcome.reason or "a dependency is down")
    log.info("batch: %s", counts)
    if outages:
        raise Unavailable(
            f"{len(outages)} of {len(document_ids)} documents are back to received because a dependency"
            f" is down ({outages[-1]}); the task fails so that it is retried once it is back"
        )
    return counts
