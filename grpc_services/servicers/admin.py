"""``rag.v1.AdminService``: system statistics and cleanup (system:admin)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc.aio
from psycopg_pool import ConnectionPool

from grpc_services.servicers import convert
from grpc_services.validation import MAX_DAYS_OLD
from rag.adapters.postgres.stats import system_stats
from rag.core.documents import DocumentStatus
from rag.core.errors import InvalidInput
from rag.proto.rag.v1 import admin_pb2, admin_pb2_grpc

Cleanup = Callable[[int], Awaitable[dict[str, int]]]


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, *, pool: ConnectionPool, cleanup: Cleanup) -> None:
        self._pool = pool
        self._cleanup = cleanup

    async def GetStats(
        self,
        request: admin_pb2.GetStatsRequest,
        context: grpc.aio.ServicerContext[admin_pb2.GetStatsRequest, admin_pb2.GetStatsResponse],
    ) -> admin_pb2.GetStatsResponse:
        stats = await asyncio.to_thread(system_stats, self._pool)
        return admin_pb2.GetStatsResponse(
            documents_by_status=[
                admin_pb2.DocumentStatusCount(
                    status=convert.STATUS_TO_PROTO[status],
                    count=stats.documents_by_status.get(status.value, 0),
                )
                for status in DocumentStatus
            ],
            documents_total=sum(stats.documents_by_status.values()),
            chunks_total=stats.chunks,
            queries_total=stats.queries,
            queries_last_24h=stats.queries_last_24h,
            cache_hit_rate=stats.cache_hit_rate,
            embedding_model_version=stats.embedding_model_version,
        )

    async def SystemCleanup(
        self,
        request: admin_pb2.SystemCleanupRequest,
        context: grpc.aio.ServicerContext[admin_pb2.SystemCleanupRequest, admin_pb2.SystemCleanupResponse],
    ) -> admin_pb2.SystemCleanupResponse:
        days = request.days_old or 30
        if not 1 <= days <= MAX_DAYS_OLD:
            raise InvalidInput(f"must be between 1 and {MAX_DAYS_OLD} days", field="days_old")
        return admin_pb2.SystemCleanupResponse(deleted=await self._cleanup(days))
