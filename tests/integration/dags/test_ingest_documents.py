"""``ingest_documents`` through ``dag.test()`` against the real stack."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.airflow import ROOT, load_dag
from tests.fixtures.corpus import POISON, mixed_corpus

pytestmark = pytest.mark.integration


def _run(conf: dict[str, object]) -> str:
    dag = load_dag("ingest_documents")
    run = dag.test(run_conf=conf)
    return str(run.state)


def _state(db: psycopg.Connection, tenant: str) -> dict[str, tuple[str, str | None, int]]:
    rows = db.execute(
        "SELECT d.source_uri, d.status::text, d.error_reason, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
        " FROM documents d WHERE d.tenant = %s",
        (tenant,),
    ).fetchall()
    return {uri.rsplit("/", 1)[-1]: (status, reason, n) for uri, status, reason, n in rows}


def _chunk_ids(db: psycopg.Connection, tenant: str) -> dict[str, list[int]]:
    rows = db.execute(
        "SELECT d.source_uri, array_agg(c.id ORDER BY c.id) FROM documents d JOIN chunks c ON c.document_id = d.id"
        " WHERE d.tenant = %s GROUP BY d.source_uri",
        (tenant,),
    ).fetchall()
    return {uri.rsplit("/", 1)[-1]: ids for uri, ids in rows}


def test_mixed_corpus_rerun_edit_and_delete(
    dag_env: dict[str, str], tmp_path: Path, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGEST_ALLOWED_ROOTS", str(tmp_path))
    tenant = f"dag{uuid.uuid4().hex[:8]}"
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    for name, data in mixed_corpus().items():
        (corpus_dir / name).write_bytes(data)
    conf = {
        "source": str(corpus_dir),
        "tenant": tenant,
        "chunk_tokens": 120,
        "overlap_tokens": 16,
        "batch_size": 3,  # several mapped tasks
    }

    assert _run(conf) == "success"
    state = _state(db, tenant)
    assert len(state) == len(mixed_corpus())
    for name, (status, reason, chunks) in state.items():
        if name in POISON:
            assert status == "quarantined" and reason, name
        else:
            assert status == "indexed" and chunks >= 1, (name, reason)

    before = _chunk_ids(db, tenant)
    assert _run(conf) == "success"  # unchanged: nothing changes
    assert _chunk_ids(db, tenant) == before and _state(db, tenant) == state

    (corpus_dir / "notes.txt").write_bytes(b"Vitamin K\n\nVitamin K helps blood clot.")
    (corpus_dir / "guide.md").unlink()
    assert _run(conf) == "success"
    after = _chunk_ids(db, tenant)
    assert "guide.md" not in after and "guide.md" not in _state(db, tenant)
    assert after["notes.txt"] != before["notes.txt"]
    assert {k: v for k, v in after.items() if k != "notes.txt"} == {
        k: v for k, v in before.items() if k not in {"notes.txt", "guide.md"}
    }


def test_bad_params_are_rejected_before_running(dag_env: dict[str, str]) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = load_dag("ingest_documents")
    with pytest.raises(ParamValidationError):
        dag.test(run_conf={"source": "/tmp", "tenant": "Bad Tenant!"})


def test_a_source_outside_the_allowed_roots_fails_the_run_unread(
    dag_env: dict[str, str], db: psycopg.Connection, capfd: pytest.CaptureFixture[str]
) -> None:
    """The stack's own secrets, with the default roots: the run fails at once, nothing is read."""
    tenant = f"dag{uuid.uuid4().hex[:8]}"
    secrets = ROOT / ".rag" / "secrets.env"
    run = load_dag("ingest_documents").test(run_conf={"source": str(secrets), "tenant": tenant})
    assert str(run.state) == "failed"
    receive = next(ti for ti in run.get_task_instances() if ti.task_id == "receive")
    assert (str(receive.state), receive.try_number) == ("failed", 1)  # no retry: it cannot help
    logged = "".join(capfd.readouterr())
    assert "inside the stack's state directory" in logged and "(RAG_STATE_DIR)" in logged
    assert db.execute("SELECT count(*) FROM documents WHERE tenant = %s", (tenant,)).fetchone() == (0,)
