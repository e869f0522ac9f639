"""``ingest_documents`` through ``dag.test()`` against the real stack."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from rag.ingestion.intake import Intake
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
    from airflow.sdk.exceptions import ParamValidationError

    dag = load_dag("ingest_documents")
    with pytest.raises(ParamValidationError):
        dag.test(run_conf={"source": "/tmp", "tenant": "Bad Tenant!"})


def test_source_or_document_ids_either_is_enough_neither_fails_the_run(
    dag_env: dict[str, str], db: psycopg.Connection, capfd: pytest.CaptureFixture[str]
) -> None:
    """Neither Param is required (the trigger form marks a field required when its type does
    not allow null), so ``receive`` refuses a run with neither, at once and saying what to give."""
    dag = load_dag("ingest_documents")
    for name in ("source", "document_ids"):
        schema = dag.params.get_param(name).schema
        assert "null" in schema["type"], (name, schema)
    assert "null" not in dag.params.get_param("tenant").schema["type"]

    tenant = f"dag{uuid.uuid4().hex[:8]}"
    for conf in ({"tenant": tenant}, {"tenant": tenant, "source": "", "document_ids": []}):
        run = load_dag("ingest_documents").test(run_conf=conf)
        assert str(run.state) == "failed", conf
        receive = next(ti for ti in run.get_task_instances() if ti.task_id == "receive")
        assert (str(receive.state), receive.try_number) == ("failed", 1), conf  # no retry
        logged = "".join(capfd.readouterr())
        assert "nothing to ingest: give source" in logged and "or document_ids" in logged, conf
    assert db.execute("SELECT count(*) FROM documents WHERE tenant = %s", (tenant,)).fetchone() == (0,)


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


def test_an_outage_fails_the_run_naming_its_documents_and_keeps_their_attempts(
    dag_env: dict[str, str],
    tmp_path: Path,
    db: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Triton unreachable (a closed port): each process task fails after its batch and is retried,
    the report fails the run naming each unfinished document; a poison file is quarantined all
    the same. More such runs than max_attempts quarantine nothing; once Triton is back the run
    indexes them all and is green."""
    import socket
    from datetime import timedelta

    monkeypatch.setenv("INGEST_ALLOWED_ROOTS", str(tmp_path))
    tenant = f"dag{uuid.uuid4().hex[:8]}"
    corpus = {f"tide{n}.txt": f"Tide {n}\n\nThe moon raises tide number {n}.".encode() for n in range(3)}
    for name, data in {**corpus, "empty.txt": b""}.items():
        (tmp_path / name).write_bytes(data)
    conf = {"source": str(tmp_path), "tenant": tenant, "batch_size": 2}
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("TRITON_GRPC_URL", f"127.0.0.1:{port}")
    monkeypatch.setenv("TRITON_TIMEOUT_S", "2")

    def run() -> tuple[str, dict[str, tuple[str, int]], str]:
        dag = load_dag("ingest_documents")
        process = dag.task_dict["process"]
        assert process.retries >= 3 and process.retry_exponential_backoff  # as deployed
        process.retries, process.retry_delay = 1, timedelta(seconds=1)  # one quick retry here
        result = dag.test(run_conf=conf)
        tries = {(ti.task_id, str(ti.state), ti.try_number) for ti in result.get_task_instances()}
        if str(result.state) == "failed":
            assert ("process", "failed", 2) in tries  # Airflow retried the failed task once
            assert ("report", "failed", 1) in tries
        logged = "".join(capfd.readouterr())
        return str(result.state), {k: (v[0], v[2]) for k, v in _state(db, tenant).items()}, logged

    # 2 runs x 2 tries: 4 claims of each document, more than max_attempts (3). The first run
    # takes on all 4 files, the second the 3 left received (the poison is done).
    for taken in (4, 3):
        state, docs, logged = run()
        assert state == "failed"
        assert docs["empty.txt"] == ("quarantined", 0)
        assert all(docs[name] == ("received", 0) for name in corpus), docs
        unfinished = db.execute(
            "SELECT id, error_reason FROM documents WHERE tenant = %s AND status = 'received'", (tenant,)
        ).fetchall()
        assert len(unfinished) == len(corpus)
        assert f"3 of {taken} documents this run took on are not finished" in logged
        for doc_id, reason in unfinished:  # the report names each, with its status and last error
            assert "Triton" in reason
            assert f"{doc_id} (file://{tmp_path}/tide" in logged and "received, attempts 0" in logged
            assert f"last error: {reason}" in logged
    rows = db.execute(
        "SELECT attempts, outage_retries FROM documents WHERE tenant = %s AND status = 'received'", (tenant,)
    ).fetchall()
    assert rows == [(0, 4)] * len(corpus)

    monkeypatch.setenv("TRITON_GRPC_URL", dag_env["TRITON_GRPC_URL"])  # Triton is back
    state, docs, _ = run()
    assert state == "success"
    assert docs["empty.txt"][0] == "quarantined" and all(docs[n][0] == "indexed" for n in corpus), docs


def test_a_given_document_another_run_is_processing_keeps_the_run_from_going_green_until_it_is_done(
    dag_env: dict[str, str], db: psycopg.Connection, intake: Intake
) -> None:
    """An upload's run finds its document already taken by another run (past ``received``): it
    processes nothing itself, and its report waits for the other run to finish the document
    before the run may succeed (it used to turn green at once, the document unfinished)."""
    import threading
    import time

    tenant = f"dag{uuid.uuid4().hex[:8]}"
    doc = intake.receive(b"Tides follow the moon.", tenant=tenant, filename="tide.txt").document
    db.execute("UPDATE documents SET status = 'chunked' WHERE id = %s", (doc.id,))  # another run's
    db.commit()
    finished_at: list[float] = []

    def the_other_run_finishes() -> None:
        time.sleep(10)
        with psycopg.connect(dag_env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(
                "UPDATE documents SET status = 'quarantined', error_reason = 'finished by the other run'"
                " WHERE id = %s",
                (doc.id,),
            )
        finished_at.append(time.monotonic())

    other = threading.Thread(target=the_other_run_finishes)
    other.start()
    try:
        state = _run({"document_ids": [str(doc.id)], "tenant": tenant})
        returned_at = time.monotonic()
    finally:
        other.join()
    assert state == "success"
    assert finished_at and finished_at[0] <= returned_at  # green only after the document was done


def test_in_progress_names_only_documents_a_worker_holds(intake: Intake, pool: ConnectionPool) -> None:
    from rag.ingestion.pipeline import await_others

    tenant = f"dag{uuid.uuid4().hex[:8]}"
    waiting, held, claimed, done = (
        intake.receive(
            f"Document {n} {uuid.uuid4().hex}".encode(), tenant=tenant, filename=f"{n}.txt"
        ).document
        for n in range(4)
    )
    documents = intake.documents
    with pool.connection() as conn:
        conn.execute("UPDATE documents SET status = 'embedded' WHERE id = %s", (held.id,))
        conn.execute("UPDATE documents SET status = 'indexed' WHERE id = %s", (done.id,))
    assert documents.claim(claimed.id, deadline_s=60).attempt == 1
    ids = [waiting.id, held.id, claimed.id, done.id]
    assert set(documents.in_progress(ids)) == {held.id, claimed.id}
    assert await_others(documents, [waiting.id, done.id], timeout_s=30) == []  # nobody holds them
    assert set(await_others(documents, ids, timeout_s=0.5, poll_s=0.1)) == {held.id, claimed.id}
