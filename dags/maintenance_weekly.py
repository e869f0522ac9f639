"""Weekly maintenance: partitions, data older than N days, BM25 statistics, VACUUM ANALYZE, caches."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Param, task
from rag_dag_defaults import Retries, rag_dag

log = logging.getLogger(__name__)

DOC = """
### Weekly maintenance

1. **ensure_partitions**: this month's and next month's `query_history` partitions (rows
   that arrived early in the default partition move into theirs).
2. **cleanup_old_data**: deletes what is older than *days_old*: `query_history` rows (whole
   monthly partitions are dropped), quarantined documents and their blobs (the same code as
   the gRPC `SystemCleanup`), and catalogue rows of expired or failed backups.
3. **refresh_bm25_stats**: recomputes BM25 document frequencies and lengths.
4. **vacuum_analyze**: `VACUUM (ANALYZE)` on every RAG table, outside a transaction (the
   postings' index-only scans need a fresh visibility map).
5. **expire_query_cache**: drops expired entries of the L3 disk query cache, if this worker has it.
"""


@rag_dag(
    "maintenance_weekly",
    description="VACUUM ANALYZE, query_history partitions, cleanup of data older than 30 days",
    doc_md=DOC,
    schedule="0 4 * * 0",
    tags=["operations", "maintenance"],
    retries=Retries(2, timedelta(minutes=1), up_to=timedelta(minutes=15), timeout=timedelta(hours=3)),
    params={
        "days_old": Param(
            30,
            type="integer",
            minimum=1,
            maximum=3650,
            title="Keep data (days)",
            description="Query history, quarantined documents and expired backup records older than this go.",
        ),
        "vacuum": Param(True, type="boolean", title="VACUUM ANALYZE", description="Run VACUUM (ANALYZE)."),
    },
)
def maintenance_weekly() -> None:
    @task
    def ensure_partitions() -> list[str]:
        """This month's and next month's query_history partitions."""
        from rag_hooks import RagHook

        from rag.adapters.postgres.housekeeping import ensure_query_history_partitions

        with RagHook() as hook, hook.pool.connection() as conn:
            return ensure_query_history_partitions(conn)

    @task
    def cleanup_old_data(partitions: list[str], params: dict[str, Any] | None = None) -> dict[str, int]:
        """Delete query history, quarantined documents and backup records older than days_old."""
        from rag_hooks import RagHook

        from rag.adapters.postgres.backups import BackupCatalogue
        from rag.operations.cleanup import cleanup_older_than

        assert params is not None
        with RagHook() as hook:
            removed = cleanup_older_than(hook.pool, hook.blobs, hook.settings, params["days_old"])
            removed["backup_records"] = BackupCatalogue(hook.pool).purge_expired(
                older_than_days=params["days_old"]
            )
        log.info("removed (older than %d days): %s", params["days_old"], removed)
        return removed

    @task
    def refresh_bm25_stats(removed: dict[str, int]) -> None:
        """Recompute BM25 document frequencies and lengths."""
        from rag_hooks import RagHook

        with RagHook() as hook:
            hook.documents().refresh_lexical_statistics()

    @task
    def vacuum_analyze(params: dict[str, Any] | None = None) -> dict[str, float]:
        """VACUUM (ANALYZE) every RAG table, outside a transaction."""
        from airflow.sdk.exceptions import AirflowSkipException
        from rag_hooks import RagHook

        from rag.adapters.postgres.housekeeping import vacuum_analyze as run_vacuum

        assert params is not None
        if not params["vacuum"]:
            raise AirflowSkipException("vacuum is off")
        return run_vacuum(RagHook().settings.DATABASE_URL)

    @task
    def expire_query_cache() -> int | None:
        """Drop expired L3 (disk) query-cache entries, if this worker keeps that cache."""
        from pathlib import Path

        from rag_hooks import RagHook

        from rag.operations.maintenance import expire_query_cache as run_expiry

        removed = run_expiry(Path(RagHook().settings.HF_CACHE_DIR))
        log.info(
            "L3 query cache: %s", "none on this worker" if removed is None else f"{removed} expired entries"
        )
        return removed

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    partitions: Any = ensure_partitions()
    removed: Any = cleanup_old_data(partitions)
    refresh_bm25_stats(removed) >> vacuum_analyze()
    expire_query_cache()


maintenance_weekly()
