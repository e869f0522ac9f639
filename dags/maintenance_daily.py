"""Daily maintenance: health of every service, old log cleanup, disk space check."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Param, task
from rag_dag_defaults import Retries, rag_dag

log = logging.getLogger(__name__)

# One task per service, so the grid shows which one is down (rag.operations.health.SERVICES).
SERVICES = ("postgres", "redis", "object_storage", "triton", "mlflow", "grpc_api")

DOC = """
### Daily maintenance

- **check_<service>**: PostgreSQL (pgvector, schema at the migrations' head), Redis (PING),
  S3 (every bucket), Triton (the *triton_models* are READY), MLflow (`/health`) and the gRPC
  API (`grpc.health.v1`, SERVING). An unhealthy service fails its task (after retries); a
  service not configured here (no `GRPC_PORT`, `MLFLOW_ENABLED=false`) is skipped with the reason.
- **cleanup_logs**: deletes files older than *log_retention_days* under Airflow's task log
  folder and the *log_dirs*, then the folders left empty.
- **check_disk**: fails (no retry) when a file system holding Airflow's home, the model
  repository, the model cache, the temp folder or a *disk_paths* entry is at or above
  *disk_threshold_percent* used.
"""


@rag_dag(
    "maintenance_daily",
    description="Health of every service, log cleanup older than 7 days, disk space alert at 90%",
    doc_md=DOC,
    schedule="30 3 * * *",
    tags=["operations", "maintenance"],
    retries=Retries(2, timedelta(seconds=30), up_to=timedelta(minutes=5), timeout=timedelta(minutes=30)),
    params={
        "log_retention_days": Param(
            7,
            type="integer",
            minimum=1,
            maximum=365,
            title="Log retention (days)",
            description="Older logs go.",
        ),
        "log_dirs": Param(
            ["/var/log/rag-system"],
            type="array",
            items={"type": "string"},
            title="Extra log folders",
            description="RAG System log folders cleaned besides Airflow's own (missing ones are skipped).",
        ),
        "disk_threshold_percent": Param(
            90,
            type="number",
            minimum=1,
            maximum=100,
            title="Disk alert threshold (%)",
            description="check_disk fails at or above this use.",
        ),
        "disk_paths": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Extra paths to check",
            description="File systems checked besides Airflow's home, the model repository and caches.",
        ),
        "triton_models": Param(
            ["embedder", "generator"],
            type="array",
            items={"type": "string"},
            title="Required Triton models",
            description="Models that must be READY for Triton to count as healthy.",
        ),
    },
)
def maintenance_daily() -> None:
    @task
    def check(service: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Check one service; unhealthy fails the task (retried), not configured skips it."""
        from airflow.sdk.exceptions import AirflowSkipException
        from rag_hooks import RagHook

        from rag.core.errors import Unavailable
        from rag.operations.health import check_service

        assert params is not None
        options = {"models": params["triton_models"]} if service == "triton" else {}
        health = check_service(service, RagHook().settings, **options)
        if health.skipped:
            raise AirflowSkipException(health.detail)
        if not health.healthy:
            raise Unavailable(f"{service} is unhealthy: {health.detail}")
        log.info("%s healthy in %.2fs: %s", service, health.seconds, health.detail)
        return health.summary()

    @task
    def cleanup_logs(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Delete Airflow's and RAG System's log files older than the retention."""
        from pathlib import Path

        from airflow.sdk import conf

        from rag.operations.maintenance import cleanup_logs as run_cleanup

        assert params is not None
        roots = [Path(conf.get("logging", "base_log_folder")), *(Path(p) for p in params["log_dirs"])]
        return run_cleanup(roots, older_than_days=params["log_retention_days"]).summary()

    @task
    def check_disk(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Fail when a file system RAG System writes to is at or above the threshold."""
        import dataclasses
        import os
        import tempfile
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowFailException
        from rag_hooks import RagHook

        from rag.operations.maintenance import disk_usage, over_threshold

        assert params is not None
        settings = RagHook().settings
        paths = [
            Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser(),
            Path(settings.TRITON_MODEL_REPOSITORY),
            Path(settings.HF_CACHE_DIR),
            Path(tempfile.gettempdir()),
            *(Path(p) for p in params["disk_paths"]),
        ]
        usages = disk_usage(paths)
        for usage in usages:
            log.info("%s: %.1f%% used, %.1f GiB free", usage.path, usage.percent, usage.free_bytes / 2**30)
        full = over_threshold(usages, params["disk_threshold_percent"])
        if full:
            raise AirflowFailException(
                f"disk space critical (>= {params['disk_threshold_percent']}% used): "
                + "; ".join(f"{u.path} {u.percent}% used, {u.free_bytes / 2**30:.1f} GiB free" for u in full)
            )
        return [dataclasses.asdict(u) for u in usages]

    for service in SERVICES:
        check.override(task_id=f"check_{service}")(service)
    cleanup_logs()
    check_disk()


maintenance_daily()
