"""Airflow hook for RAG System: its database, object storage, Triton and ingestion services.

Tasks build everything from RAG System's settings (the deployment guide's environment
variables, which the Airflow workers share with the other services), inside the task, never at
DAG parse time. The hook holds no state between tasks; each task closes what it opened.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from rag.adapters.objectstore import BlobStore
    from rag.adapters.triton import BlockingTriton
    from rag.core.chunking import ChunkingOptions
    from rag.ingestion.intake import Intake
    from rag.ingestion.pipeline import Pipeline
    from rag.parsing.isolation import ParserPool
    from rag.settings import Settings


# A privileged PostgreSQL login (superuser, or CREATEDB plus the right to create the vector
# extension) for restores only: kept in Airflow's connections (secrets backend), not in the
# settings every service reads, so the serving processes never hold it.
ADMIN_DB_CONN_ID = "rag_postgres_admin"
log = logging.getLogger(__name__)


class RagHook(BaseHook):
    # No conn_name_attr/default_conn_name/conn_type/hook_name: only Airflow's provider discovery
    # reads them, and this hook has no connection type of its own (it builds from the settings).

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._opened: list[Any] = []

    @cached_property
    def settings(self) -> Settings:
        from rag.settings import load_settings

        return load_settings()

    @cached_property
    def pool(self) -> ConnectionPool:
        from rag.adapters.postgres.pool import create_pool

        pool = create_pool(self.settings, min_size=1, name="airflow-task")
        self._opened.append(pool)
        return pool

    @cached_property
    def blobs(self) -> BlobStore:
        from rag.adapters.objectstore import BlobStore

        return BlobStore(self.settings)

    @cached_property
    def triton(self) -> BlockingTriton:
        from rag.adapters.triton import BlockingTriton, TritonOptions

        options = TritonOptions(self.settings.TRITON_GRPC_URL, timeout_s=self.settings.TRITON_TIMEOUT_S)
        client = BlockingTriton(options)
        self._opened.append(client)
        return client

    @cached_property
    def parser(self) -> ParserPool:
        """Worker processes that parse documents under the PARSE_* limits (stopped on close)."""
        from rag.parsing.isolation import ParserPool
        from rag.parsing.limits import ParseLimits

        pool = ParserPool(ParseLimits.from_settings(self.settings))
        self._opened.append(pool)
        return pool

    def intake(self) -> Intake:
        from rag.adapters.postgres.documents import DocumentRepository
        from rag.ingestion.intake import Intake

        return Intake(DocumentRepository(self.pool), self.blobs, self.settings.S3_BUCKET_DOCUMENTS)

    def index_version(self) -> str:
        """The serving embedding index version (the packaged embedder's on a fresh database)."""
        from rag.adapters.postgres.indexes import IndexRegistry
        from rag.core.documents import EMBEDDING_DIMENSION
        from rag.models import artifacts

        registry = IndexRegistry(self.pool)
        active = registry.active()
        if active is not None:
            return active.model_version
        path = artifacts.default_embedder_path()
        version = artifacts.model_version(path, artifacts.DEFAULT_EMBEDDER_NAME)
        return registry.ensure_active(version, EMBEDDING_DIMENSION).model_version

    def pipeline(
        self, chunking: ChunkingOptions, *, model_version: str | None = None, max_attempts: int | None = None
    ) -> Pipeline:
        from rag.adapters.postgres.documents import MAX_ATTEMPTS, DocumentRepository
        from rag.adapters.triton import Priority
        from rag.ingestion.pipeline import Pipeline

        triton = self.triton
        return Pipeline(
            documents=DocumentRepository(self.pool),
            blobs=self.blobs,
            bucket=self.settings.S3_BUCKET_DOCUMENTS,
            embed=lambda texts: triton.embed(texts, priority=Priority.BATCH),
            parser=self.parser,
            model_version=model_version or self.index_version(),
            chunking=chunking,
            max_attempts=max_attempts or MAX_ATTEMPTS,
        )

    def process_batch(
        self,
        document_ids: list[str],
        chunking: ChunkingOptions,
        *,
        max_attempts: int | None = None,
        owner: str | None = None,
    ) -> dict[str, int]:
        """One mapped ingestion task: the pipeline over ``document_ids`` (their chunks embedded
        together), each outcome logged; the count of documents per resulting status.
        ``max_attempts`` (default: the pipeline's) caps claims and transient retries.
        ``owner`` (the task instance) signs the claims; claims it still holds from an earlier
        try, which died with them, are given back first.

        Raises :class:`~rag.core.errors.Unavailable` after the batch when a dependency was down
        for any of its documents (they are back to ``received``, their attempts kept), so that
        Airflow retries the task with backoff; the documents it finished stay finished."""
        import uuid
        from dataclasses import replace

        from rag.core.errors import Unavailable

        if not document_ids:  # the one empty batch of a run with nothing to process
            return {}
        counts: dict[str, int] = {}
        outages: list[str] = []
        pipeline = replace(self.pipeline(chunking, max_attempts=max_attempts), owner=owner)
        if owner is not None:
            released = pipeline.documents.release_claims([uuid.UUID(i) for i in document_ids], owner=owner)
            if released:
                log.warning("took back %d claims an earlier try of %s left behind", len(released), owner)
        for outcome in pipeline.process_many([uuid.UUID(doc_id) for doc_id in document_ids]):
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

    def admin_dsn(self, conn_id: str = ADMIN_DB_CONN_ID) -> str | None:
        """The admin connection's DSN, or None when Airflow has no such connection."""
        from airflow.sdk.exceptions import AirflowNotFoundException
        from psycopg.conninfo import make_conninfo

        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException:
            self.log.info("no Airflow connection %s: restoring with DATABASE_URL's role", conn_id)
            return None
        return make_conninfo(
            host=conn.host or "127.0.0.1",
            port=conn.port or 5432,
            user=conn.login,
            password=conn.password,
            dbname=conn.schema or "postgres",
            connect_timeout=10,
        )

    def close(self) -> None:
        for resource in reversed(self._opened):
            resource.close()
        self._opened.clear()

    def __enter__(self) -> RagHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
