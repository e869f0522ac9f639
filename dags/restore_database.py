"""Restore a database backup (default: the latest) into a scratch database, or over the live one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, task
from rag_dag_defaults import Retries, rag_dag

log = logging.getLogger(__name__)

DOC = """
### Restore the database (and the restore drill)

Downloads a catalogued dump from S3 into a private temporary file and refuses it unless its
**size and sha256 are the catalogue's** (nothing of it reaches psql before), restores that file
through gunzip into `psql --single-transaction`, then checks the restored database against the
catalogue: **row count and primary-key checksum of every table** as they were when the dump was
taken, and a **sample search** (a chunk's own vector must find it first with pgvector; its words
must find it with BM25). The recovery time is logged. A database that is kept gets a fresh
cache epoch, so no API process serves search results cached before the restore.

- **drill** (default): restore into *target_database* (a scratch database), check, then drop
  it. The outcome is kept in the backup's catalogue row (`details.last_drill`).
- Not a drill, another target: the restored database is kept for inspection or recovery.
- Over the **live** database: only with *confirm_overwrite_live*; the dump is restored into a
  staging database, checked, migrated to the current schema, given the live backup catalogue,
  and swapped in by renaming. The previous database is kept as `<db>_before_restore_<time>`.

Creating databases and the `vector` extension needs a privileged PostgreSQL role: define the
Airflow connection **`rag_postgres_admin`** (type postgres; a superuser). Without it the restore
uses `DATABASE_URL`'s role, which then needs CREATEDB and the right to create the extension.
"""


@rag_dag(
    "restore_database",
    description="Restore a backup into scratch (drill: check counts, checksums, search) or over live",
    doc_md=DOC,
    schedule=None,
    tags=["operations", "backup"],
    retries=Retries(1, timedelta(minutes=1), up_to=timedelta(minutes=10), timeout=timedelta(hours=6)),
    params={
        "backup": Param(
            "",
            type="string",
            pattern=r"^$|^rag_db_backup_\d{8}_\d{6}\.sql\.gz$",
            title="Backup",
            description="Object key of a dump (rag_db_backup_YYYYmmdd_HHMMSS.sql.gz), empty: latest.",
        ),
        "target_database": Param(
            "rag_restore_drill",
            type="string",
            pattern="^[a-z_][a-z0-9_]{0,62}$",
            title="Target database",
            description="Where to restore; a scratch database unless you mean to replace the live one.",
        ),
        "drill": Param(
            True,
            type="boolean",
            title="Drill",
            description="Restore into scratch, check it all, log the recovery time, then drop it.",
        ),
        "confirm_overwrite_live": Param(
            False,
            type="boolean",
            title="Confirm overwriting the live database",
            description="Required to restore over the live database (DATABASE_URL's).",
        ),
        "sample_searches": Param(
            3,
            type="integer",
            minimum=0,
            maximum=100,
            title="Sample searches",
            description="Chunks whose dense and BM25 search is checked on the restored database.",
        ),
        "maintenance_work_mem": Param(
            "1GB",
            type="string",
            pattern=r"^\d+(kB|MB|GB)$",
            title="maintenance_work_mem",
            description="Memory for the index builds of the restore (the HNSW rebuild dominates it).",
        ),
    },
)
def restore_database() -> None:
    @task
    def plan(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Check the request (refuse the live database without confirmation); pick the backup."""
        from airflow.sdk.exceptions import AirflowFailException
        from rag_hooks import RagHook

        from rag.adapters.postgres.backups import BackupCatalogue
        from rag.core.errors import FailedPrecondition, InvalidInput, NotFound
        from rag.operations.restore_plan import plan_restore

        assert params is not None
        with RagHook() as hook:
            try:
                chosen = plan_restore(
                    hook.settings,
                    BackupCatalogue(hook.pool),
                    object_key=params["backup"],
                    target=params["target_database"],
                    confirm_overwrite_live=params["confirm_overwrite_live"],
                    drill=params["drill"],
                )
            except (FailedPrecondition, InvalidInput, NotFound) as exc:
                raise AirflowFailException(str(exc)) from None
        backup = chosen.backup
        log.info(
            "restoring %s (%s bytes, taken %s) into %s%s",
            backup.object_key,
            backup.size_bytes,
            backup.started_at,
            chosen.target,
            " (drill)" if chosen.drill else " OVER THE LIVE DATABASE" if chosen.overwrites_live else "",
        )
        return {"object_key": backup.object_key, "target": chosen.target}

    @task
    def restore(chosen: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Restore, check counts, checksums and search; a drill drops its scratch database."""
        from airflow.sdk.exceptions import AirflowFailException
        from rag_hooks import RagHook

        from rag.adapters.postgres.backups import BackupCatalogue
        from rag.core.errors import FailedPrecondition
        from rag.operations.restore import Restorer
        from rag.operations.restore_plan import plan_restore

        assert params is not None
        with RagHook() as hook:
            catalogue = BackupCatalogue(hook.pool)
            again = plan_restore(
                hook.settings,
                catalogue,
                object_key=chosen["object_key"],
                target=chosen["target"],
                confirm_overwrite_live=params["confirm_overwrite_live"],
                drill=params["drill"],
            )
            restorer = Restorer(
                hook.settings,
                hook.blobs,
                admin_dsn=hook.admin_dsn(),
                maintenance_work_mem=params["maintenance_work_mem"],
            )
            if again.overwrites_live:
                hook.pool.close()  # its connections to the live database would block the swap
            try:
                report = restorer.run(again, samples=params["sample_searches"])
            except Exception as exc:
                if again.drill:
                    catalogue.record_drill(
                        again.backup.id,
                        {"at": datetime.now(UTC).isoformat(), "passed": False, "error": str(exc)[:2000]},
                    )
                if isinstance(exc, FailedPrecondition):  # a mismatch or a refusal: a retry won't help
                    raise AirflowFailException(str(exc)) from None
                raise
            summary = report.summary()
            log.info("recovery time %.1fs: %s", report.recovery_seconds, summary)
            if again.drill:
                catalogue.record_drill(
                    again.backup.id, {"at": datetime.now(UTC).isoformat(), "passed": True, **summary}
                )
        return summary

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    planned: Any = plan()
    restore(planned)


restore_database()
