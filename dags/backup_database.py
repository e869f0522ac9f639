"""Back up the RAG database and the Triton model repository into object storage, daily."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, task
from rag_dag_defaults import Retries, rag_dag

log = logging.getLogger(__name__)
DATABASE_BACKUP = Asset("rag://backups/database")

DOC = """
### Back up the database and the model repository

- **dump_database**: `pg_dump` (plain SQL) of the RAG database, gzip level 1, streamed into
  `S3_BUCKET_BACKUPS` as `rag_db_backup_YYYYmmdd_HHMMSS.sql.gz` (nothing is written to local
  disk). The `backups` catalogue row holds size, sha256 and the row count and primary-key
  checksum of every table, taken in the dump's own snapshot: `restore_database` checks a
  restore against them.
- **snapshot_model_repository**: `TRITON_MODEL_REPOSITORY` as
  `rag_model_repository_YYYYmmdd_HHMMSS.tar.gz` (skipped if the folder is not on this worker).
- **apply_retention**: dumps older than *keep_days* (the newest good one is always kept) and
  all but the last *keep_model_snapshots* snapshots are deleted from S3 and marked `expired`.

Restore with the `restore_database` DAG, or by hand:
`aws s3 cp s3://rag-backups/rag_db_backup_....sql.gz - | gunzip | psql -d rag`.
"""


@rag_dag(
    "backup_database",
    description="pg_dump | gzip -1 to S3 with a checked catalogue; model repository snapshots; retention",
    doc_md=DOC,
    schedule="0 2 * * *",
    tags=["operations", "backup"],
    retries=Retries(2, timedelta(minutes=1), up_to=timedelta(minutes=15), timeout=timedelta(hours=4)),
    params={
        "keep_days": Param(
            7,
            type="integer",
            minimum=1,
            maximum=365,
            title="Keep dumps (days)",
            description="Database dumps older than this are deleted (the newest good one always stays).",
        ),
        "keep_model_snapshots": Param(
            5,
            type="integer",
            minimum=1,
            maximum=100,
            title="Keep model snapshots",
            description="How many model-repository snapshots to keep.",
        ),
        "snapshot_models": Param(
            True,
            type="boolean",
            title="Snapshot the model repository",
            description="Also archive TRITON_MODEL_REPOSITORY.",
        ),
    },
)
def backup_database() -> None:
    @task(outlets=[DATABASE_BACKUP])
    def dump_database() -> dict[str, Any]:
        """Dump, compress and upload the database; catalogue it with its row counts."""
        from rag_hooks import RagHook

        from rag.operations.backup import backup_database as run_backup

        with RagHook() as hook:
            return run_backup(hook.settings, hook.pool, hook.blobs).summary()

    @task
    def snapshot_model_repository(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Archive the Triton model repository (config, code and exported weights)."""
        from airflow.sdk.exceptions import AirflowSkipException
        from rag_hooks import RagHook

        from rag.core.errors import NotFound
        from rag.operations.backup import backup_model_repository

        assert params is not None
        if not params["snapshot_models"]:
            raise AirflowSkipException("snapshot_models is off")
        with RagHook() as hook:
            try:
                return backup_model_repository(hook.settings, hook.pool, hook.blobs).summary()
            except NotFound as exc:
                raise AirflowSkipException(str(exc)) from None

    @task(trigger_rule="none_failed")
    def apply_retention(
        dump: dict[str, Any], snapshot: dict[str, Any] | None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Expire what is past retention, in S3 and in the catalogue."""
        from rag_hooks import RagHook

        from rag.operations.backup import apply_retention as run_retention

        assert params is not None
        log.info("dump: %s", dump)
        log.info("model repository snapshot: %s", snapshot or "skipped")
        with RagHook() as hook:
            report = run_retention(
                hook.settings,
                hook.pool,
                hook.blobs,
                keep_days=params["keep_days"],
                keep_snapshots=params["keep_model_snapshots"],
            )
        return report.summary()

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    dump: Any = dump_database()
    snapshot: Any = snapshot_model_repository()
    apply_retention(dump, snapshot)


backup_database()
