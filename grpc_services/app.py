"""The process's shared clients and every servicer, built once at start-up (STYLE rule 5).

Every client is built here, once per process, and passed in: the PostgreSQL pools, the Triton
channel (the model lifecycle's blocking calls share it from worker threads), Redis, object
storage, Airflow, and the model lifecycle (its MLflow client is built on its first call).

The API reaches PostgreSQL one way: blocking psycopg pools called from worker threads
(``asyncio.to_thread``), the way the search, document and statistics repositories already
worked; the user repository and the readiness check moved off the async pool, which is gone.
Two blocking pools remain: an autocommit one for search's single statements, a transactional
one for everything else. The LISTEN connections that keep the search and token-version caches
(``SearchVersions``, ``TokenVersionMap``) stay async: each waits for notifications on a
connection of its own (and reads what it caches there), which a thread would only sit on.

Measured with ``python -m bench.pg_access`` (400 statements per cell, from an asyncio loop, on a
shared 2-core machine at load averages 15-18): p50 in ms, run 1 / run 2.

    query, callers          async         sync in threads   sync in threads, autocommit
    search-like, 1          5.1 / 3.8     2.1 / 1.3         1.8 / 1.2
    search-like, 8          28.1 / 7.7    8.4 / 6.3         4.8 / 6.2
    get by id, 1            4.2 / 0.9     0.8 / 0.6         0.5 / 0.4
    get by id, 8            29.7 / 7.4    7.5 / 4.5         9.2 / 4.1

Sync in threads was faster at p50 in every cell of both runs (0.13x-0.82x of async); the p99s
were noisy and favoured neither way (8-200 ms). psycopg's async connection pays several
event-loop wake-ups per statement, which a busy loop delays; a worker thread waits in libpq
instead. It is also the simpler choice: every other repository was blocking already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry

from grpc_services.health import Dependencies, Readiness
from grpc_services.state_metrics import DatabaseStateCollector
from rag.core.authentication import TokenVersions
from rag.settings import Settings

log = logging.getLogger(__name__)

# What each service needs to answer (grpc.health.v1 per service); the overall status needs all.
SERVICE_NEEDS: dict[str, tuple[str, ...]] = {
    "rag.v1.AuthService": ("database",),
    "rag.v1.DocumentService": ("database", "object_storage"),
    "rag.v1.SearchService": ("database", "embedder"),
    "rag.v1.GenerationService": ("database", "embedder", "generator"),
    "rag.v1.AdminService": ("database", "object_storage"),
    "rag.v1.ModelService": ("database",),
    "rag.v1.FeedbackService": ("database",),
}


@dataclass
class Application:
    servicers: list[object]
    readiness: Dependencies
    # Refreshed by the database: the server refuses tokens revoked since they were issued.
    token_versions: TokenVersions | None = None


@contextlib.asynccontextmanager
async def application(
    settings: Settings, registry: CollectorRegistry = REGISTRY
) -> AsyncIterator[Application]:
    """Every servicer with its shared clients; the state metrics (database) join ``registry``."""
    from grpc_services.servicers.admin import AdminServicer
    from grpc_services.servicers.auth import AuthServicer
    from grpc_services.servicers.documents import DocumentServicer
    from grpc_services.servicers.feedback import FeedbackServicer
    from grpc_services.servicers.generation import GenerationServicer
    from grpc_services.servicers.models import ModelServicer
    from grpc_services.servicers.search import SearchServicer
    from rag.adapters.airflow import AirflowClient
    from rag.adapters.cache import QUERY_CACHE_SUBDIR, TieredCache
    from rag.adapters.objectstore import BlobStore
    from rag.adapters.passwords import Argon2Passwords
    from rag.adapters.postgres.documents import DocumentRepository
    from rag.adapters.postgres.health import database_ready
    from rag.adapters.postgres.history import QueryHistory
    from rag.adapters.postgres.labels import LabelRepository
    from rag.adapters.postgres.pool import create_pool
    from rag.adapters.postgres.search_versions import SearchVersions
    from rag.adapters.postgres.state import read_state
    from rag.adapters.postgres.token_versions import TokenVersionMap
    from rag.adapters.postgres.users import UserRepository
    from rag.adapters.tokens import JwtTokens
    from rag.adapters.triton import BlockingTriton, TritonClient, TritonOptions
    from rag.core.authentication import Authenticator
    from rag.core.throttle import LoginThrottle
    from rag.generation.grounder import Grounder, GroundingPolicy
    from rag.generation.service import GenerationService
    from rag.generation.support import EmbeddingSupport
    from rag.ingestion.intake import Intake, UploadSlots
    from rag.ingestion.trigger import IngestionTrigger
    from rag.modelops.lifecycle import build_lifecycle
    from rag.parsing import ParseLimits
    from rag.retrieval.service import RetrievalService

    # Every repository is blocking and runs in worker threads: see the module doc for why.
    pool = await asyncio.to_thread(create_pool, settings, min_size=2, name="grpc-sync", wait=True)
    # Search runs single statements: an autocommit pool saves a BEGIN and a COMMIT round trip
    # around each (three of them per search).
    search_pool = await asyncio.to_thread(
        create_pool, settings, min_size=2, name="grpc-search", autocommit=True
    )
    triton = TritonClient(TritonOptions(settings.TRITON_GRPC_URL, timeout_s=settings.TRITON_TIMEOUT_S))
    cache = TieredCache(
        redis_url=settings.REDIS_URL, disk_dir=Path(settings.HF_CACHE_DIR) / QUERY_CACHE_SUBDIR
    )
    blobs = BlobStore(settings)
    airflow = (
        AirflowClient(
            settings.AIRFLOW_API_URL,
            settings.AIRFLOW_USERNAME,
            settings.AIRFLOW_PASSWORD.get_secret_value() if settings.AIRFLOW_PASSWORD else None,
        )
        if settings.AIRFLOW_API_URL
        else None
    )
    versions = SearchVersions(search_pool, conninfo=settings.DATABASE_URL)
    history = QueryHistory(search_pool)
    users = UserRepository(pool)
    token_versions = TokenVersionMap(users, conninfo=settings.DATABASE_URL)
    passwords = Argon2Passwords(
        threads=settings.PASSWORD_HASH_THREADS, max_waiting=settings.PASSWORD_HASH_MAX_WAITING
    )
    login_throttle = LoginThrottle(
        username_per_minute=settings.LOGIN_PER_USERNAME_PER_MINUTE,
        username_burst=settings.LOGIN_PER_USERNAME_BURST,
        address_per_minute=settings.LOGIN_PER_ADDRESS_PER_MINUTE,
        address_burst=settings.LOGIN_PER_ADDRESS_BURST,
    )
    try:
        tokens = JwtTokens.from_settings(settings)
        documents = DocumentRepository(pool)
        await versions.start()
        await token_versions.start()
        await history.start()
        retrieval = RetrievalService(
            pool=search_pool,
            triton=triton,
            cache=cache,
            versions=versions,
            history=history,
            rerank_depth=settings.RERANK_DEPTH,
            rerank_by_default=settings.RERANK_BY_DEFAULT,
        )
        intake = Intake(
            documents,
            blobs,
            settings.S3_BUCKET_DOCUMENTS,
            ParseLimits(max_bytes=settings.UPLOAD_MAX_BYTES),
            uploads=UploadSlots(settings.UPLOAD_MAX_CONCURRENT),
            part_bytes=settings.UPLOAD_PART_BYTES,
        )

        async def cleanup(days: int) -> dict[str, int]:
            from rag.operations.cleanup import cleanup_older_than

            removed = await asyncio.to_thread(cleanup_older_than, pool, blobs, settings, days)
            removed["cache_entries"] = await asyncio.to_thread(cache.expire_disk)
            return removed

        servicers: list[object] = [
            AuthServicer(Authenticator(users, passwords, tokens, throttle=login_throttle)),
            DocumentServicer(
                intake=intake,
                documents=documents,
                trigger=IngestionTrigger(airflow),
                max_upload_bytes=settings.UPLOAD_MAX_BYTES,
                idle_timeout_s=settings.UPLOAD_IDLE_TIMEOUT_S,
                on_change=versions.invalidate,
            ),
            SearchServicer(retrieval),
            FeedbackServicer(LabelRepository(pool)),
            GenerationServicer(
                GenerationService(
                    retrieval=retrieval,
                    triton=triton,
                    grounder=Grounder(
                        EmbeddingSupport(triton),
                        GroundingPolicy(
                            threshold=settings.GROUNDING_SUPPORT_THRESHOLD,
                            extractive_sentences=settings.GROUNDING_EXTRACTIVE_SENTENCES,
                        ),
                    ),
                )
            ),
            AdminServicer(pool=pool, cleanup=cleanup),
            ModelServicer(
                # Its blocking calls run in worker threads, on the server's Triton channel.
                lifecycle=build_lifecycle(
                    settings, pool, BlockingTriton.sharing(triton, asyncio.get_running_loop())
                ),
                triton=triton,
                cache_dir=Path(settings.HF_CACHE_DIR),
            ),
        ]

        async def storage_ready() -> bool:
            return await asyncio.to_thread(blobs.ready)

        def model(name: str) -> Readiness:
            return lambda: triton.model_ready(name)

        readiness = Dependencies(
            {
                "database": lambda: database_ready(pool),
                "object_storage": storage_ready,
                "embedder": model("embedder"),
                "generator": model("generator"),
            },
            SERVICE_NEEDS,
        )
        state_metrics = DatabaseStateCollector(
            lambda: read_state(pool), memory_limit_bytes=settings.MAX_MEMORY_GB * 2**30
        )
        registry.register(state_metrics)
        try:
            yield Application(servicers, readiness, token_versions)
        finally:
            registry.unregister(state_metrics)
    finally:
        await versions.close()
        await token_versions.close()
        passwords.close()
        await history.close()
        await triton.close()
        await cache.close()
        if airflow is not None:
            airflow.close()
        await asyncio.to_thread(pool.close)
        await asyncio.to_thread(search_pool.close)
