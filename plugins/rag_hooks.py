"""Airflow hook for RAG System: its database, object storage, Triton and parser workers.

Tasks build everything from RAG System's settings (the deployment guide's environment
variables, which the Airflow workers share with the other services), inside the task, never at
DAG parse time. The hook opens connections and hands them to the services (the ingestion
pipeline is assembled in :mod:`rag.ingestion.assembly`); it holds no state between tasks, and
each task closes what it opened.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from rag.adapters.objectstore import BlobStore
    from rag.adapters.postgres.documents import DocumentRepository
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

    def documents(self) -> DocumentRepository:
        """The documents in PostgreSQL, with the sweeps, counts and statistics the DAGs run
        (more than the ingestion's port, :class:`rag.core.ports.DocumentStore`, offers)."""
        from rag.adapters.postgres.documents import DocumentRepository

        return DocumentRepository(self.pool)

    def intake(self) -> Intake:
        from rag.ingestion.intake import Intake

        return Intake(self.documents(), self.blobs, self.settings.S3_BUCKET_DOCUMENTS)

    def pipeline(
        self,
        chunking: ChunkingOptions,
        *,
        model_version: str | None = None,
        max_attempts: int | None = None,
        owner: str | None = None,
    ) -> Pipeline:
        """The ingestion pipeline over this hook's connections (:mod:`rag.ingestion.assembly`)."""
        from rag.ingestion.assembly import build_pipeline

        return build_pipeline(
            pool=self.pool,
            blobs=self.blobs,
            bucket=self.settings.S3_BUCKET_DOCUMENTS,
            triton=self.triton,
            parser=self.parser,
            chunking=chunking,
            model_version=model_version,
            max_attempts=max_attempts,
            owner=owner,
        )

    def process_batch(
        self,
        document_ids: list[str],
        chunking: ChunkingOptions,
        *,
        max_attempts: int | None = None,
        owner: str | None = None,
    ) -> dict[str, int]:
        """:func:`rag.ingestion.assembly.process_batch` over :meth:`pipeline`: ``max_attempts``
        (default: the pipeline's) caps claims and transient retries, ``owner`` (the task
        instance) signs the claims."""
        from rag.ingestion.assembly import process_batch

        return process_batch(
            document_ids, lambda: self.pipeline(chunking, max_attempts=max_attempts, owner=owner)
        )

    def train_reranker(self, params: dict[str, Any], *, username: str) -> dict[str, Any]:
        """:func:`rag.modelops.training_assembly.train_reranker` over this hook's connections."""
        from rag.modelops.training_assembly import train_reranker

        return train_reranker(
            params, pool=self.pool, triton=self.triton, settings=self.settings, username=username
        )

    def promote_reranker(self, trained: dict[str, Any], *, margin: float) -> dict[str, Any]:
        """:func:`rag.modelops.training_assembly.promote_reranker` over this hook's connections."""
        from rag.modelops.training_assembly import promote_reranker

        return promote_reranker(
            trained, margin=margin, pool=self.pool, triton=self.triton, settings=self.settings
        )

    def train_embedder(self, params: dict[str, Any], *, username: str) -> dict[str, Any]:
        """:func:`rag.modelops.training_assembly.train_embedder` over this hook's connections."""
        from rag.modelops.training_assembly import train_embedder

        return train_embedder(
            params, pool=self.pool, triton=self.triton, settings=self.settings, username=username
        )

    def promote_embedder(self, trained: dict[str, Any], *, margin: float) -> dict[str, Any]:
        """:func:`rag.modelops.training_assembly.promote_embedder` over this hook's connections."""
        from rag.modelops.training_assembly import promote_embedder

        return promote_embedder(
            trained, margin=margin, pool=self.pool, triton=self.triton, settings=self.settings
        )

    def restore_embedder(self, model_version: str) -> str:
        """:func:`rag.modelops.training_assembly.restore_embedder` over this hook's connections."""
        from rag.modelops.training_assembly import restore_embedder

        return restore_embedder(model_version, pool=self.pool, triton=self.triton, settings=self.settings)

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
