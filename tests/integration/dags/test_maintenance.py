"""``maintenance_daily`` and ``maintenance_weekly`` through ``dag.test()`` against the real stack."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from rag.settings import Settings
from tests.fixtures.airflow import load_dag

pytestmark = pytest.mark.integration


def _task_states(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_daily_reports_healthy_cleans_logs_and_fails_on_a_full_disk(
    dag_env: dict[str, str], tmp_path: Path
) -> None:
    logs = tmp_path / "rag-logs"
    (logs / "old").mkdir(parents=True)
    old, fresh = logs / "old" / "api.log", logs / "api.log"
    old.write_text("old\n")
    fresh.write_text("new\n")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))

    dag = load_dag("maintenance_daily")
    run = dag.test(run_conf={"log_dirs": [str(logs)]})
    states = _task_states(run)
    assert str(run.state) == "success", states
    checks = {k: v for k, v in states.items() if k.startswith("check_") and k != "check_disk"}
    assert checks == {
        f"check_{s}": "success"
        for s in ("postgres", "redis", "object_storage", "triton", "mlflow", "grpc_api")
    }
    assert not old.exists() and not (logs / "old").exists() and fresh.exists()

    run = dag.test(run_conf={"log_dirs": [str(logs)], "disk_threshold_percent": 1})
    states = _task_states(run)
    assert str(run.state) == "failed"
    assert states["check_disk"] == "failed"
    assert states["check_postgres"] == "success" and states["cleanup_logs"] == "success"


def test_disk_check_finds_the_file_system_over_the_threshold(tmp_path: Path) -> None:
    from rag.operations.maintenance import disk_usage, over_threshold

    usages = disk_usage([tmp_path, tmp_path / "not" / "yet"])
    assert len(usages) == 1 and 0 < usages[0].percent < 100
    assert over_threshold(usages, usages[0].percent) == usages
    assert over_threshold(usages, min(100.0, usages[0].percent + 0.1)) == []


def _next_month(today: date) -> date:
    return date(today.year + today.month // 12, today.month % 12 + 1, 1)


def test_weekly_creates_partitions_cleans_old_data_and_vacuums(
    dag_env: dict[str, str], settings: Settings, db: psycopg.Connection
) -> None:
    began = datetime.now(UTC)
    following = _next_month(date.today())
    partition = f"query_history_y{following:%Y}m{following:%m}"
    tenant = f"mw{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as su:
        # Next month's partition is gone (as if the migration ran a month ago); it must come back.
        su.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(partition)))
        su.execute(
            "INSERT INTO query_history (created_at, tenant, kind, query, latency_ms)"
            " VALUES (now() - interval '40 days', %s, 'search', 'old', 1), (now(), %s, 'search', 'new', 1)",
            (tenant, tenant),
        )
        # updated_at is only set by a trigger on UPDATE: an insert can backdate it.
        su.execute(
            "INSERT INTO documents (tenant, source_uri, content_hash, size_bytes, status, error_reason, updated_at)"
            " VALUES (%s, 'file:///old.pdf', %s, 1, 'quarantined', 'bad', now() - interval '40 days'),"
            "        (%s, 'file:///new.pdf', %s, 1, 'quarantined', 'bad', now())",
            (tenant, "a" * 64, tenant, "b" * 64),
        )
        su.execute(
            "INSERT INTO backups (kind, bucket, object_key, status, started_at)"
            " VALUES ('database', 'rag-backups', %s, 'expired', now() - interval '40 days')",
            (f"rag_db_backup_old_{tenant}.sql.gz",),
        )

    run = load_dag("maintenance_weekly").test(run_conf={"days_old": 30})
    assert str(run.state) == "success", _task_states(run)

    assert db.execute("SELECT to_regclass(%s)", (partition,)).fetchone() == (partition,)
    queries = db.execute("SELECT query FROM query_history WHERE tenant = %s", (tenant,)).fetchall()
    assert queries == [("new",)]
    sources = db.execute("SELECT source_uri FROM documents WHERE tenant = %s", (tenant,)).fetchall()
    assert sources == [("file:///new.pdf",)]
    assert db.execute(
        "SELECT count(*) FROM backups WHERE object_key LIKE %s", (f"%{tenant}%",)
    ).fetchone() == (0,)
    vacuumed = db.execute(
        "SELECT relname, last_vacuum, last_analyze FROM pg_stat_user_tables"
        " WHERE relname IN ('documents', 'chunks', 'chunk_terms')"
    ).fetchall()
    assert len(vacuumed) == 3
    for name, last_vacuum, last_analyze in vacuumed:
        assert last_vacuum is not None and last_vacuum >= began, name
        assert last_analyze is not None and last_analyze >= began, name
    db.execute("DELETE FROM documents WHERE tenant = %s", (tenant,))
    db.commit()
