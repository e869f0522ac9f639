"""``ingest_sweeper`` through ``dag.test()`` against the real stack."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from rag.ingestion.intake import Intake
from rag.stack.components.postgres import Postgres
from rag.stack.stack import LocalStack
from tests.fixtures.airflow import load_dag

pytestmark = pytest.mark.integration


def test_sweeper_ingests_left_received_and_retries_or_quarantines_stuck(
    dag_env: dict[str, str], stack: LocalStack, intake: Intake, index_version: str, db: psycopg.Connection
) -> None:
    tenant = f"sw{uuid.uuid4().hex[:8]}"
    ids = {
        name: intake.receive(
            f"{name.title()}\n\nThe {name} document talks about lighthouses and tides.".encode(),
            tenant=tenant,
            source_uri=f"file:///sweeper/{name}.txt",
        ).document.id
        for name in ("left", "stuck_once", "stuck_thrice", "fresh", "old_version", "died_once", "died_thrice")
    }
    # "left": received 20 minutes ago and never processed (Airflow was down). updated_at is set
    # by a trigger on every UPDATE; a superuser session with replication role "replica" skips it.
    with psycopg.connect(Postgres(stack.ctx).superuser_dsn("rag"), autocommit=True) as su:
        su.execute("SET session_replication_role = replica")
        su.execute(
            "UPDATE documents SET updated_at = now() - interval '20 minutes' WHERE id = %s", (ids["left"],)
        )
    # Their workers died mid-pipeline: past the deadline, after one and after three attempts.
    db.execute(
        "UPDATE documents SET status = 'parsed', attempts = 1, deadline_at = now() - interval '1 minute'"
        " WHERE id = %s",
        (ids["stuck_once"],),
    )
    db.execute(
        "UPDATE documents SET status = 'chunked', attempts = 3, deadline_at = now() - interval '1 minute'"
        " WHERE id = %s",
        (ids["stuck_thrice"],),
    )
    # Their workers died while parsing, still `received`: the claims ran out.
    for name, attempts in (("died_once", 1), ("died_thrice", 3)):
        db.execute(
            "UPDATE documents SET attempts = %s, claimed_until = now() - interval '1 minute' WHERE id = %s",
            (attempts, ids[name]),
        )
    # "old_version": indexed after a re-embedding's cutover, with the version it retired.
    retired = f"retired-{tenant}"
    db.execute(
        "INSERT INTO embedding_indexes (model_version, dimension, status) VALUES (%s, 384, 'retired')",
        (retired,),
    )
    db.execute(
        "UPDATE documents SET status = 'indexed', embedding_model_version = %s WHERE id = %s",
        (retired, ids["old_version"]),
    )
    db.commit()

    run = load_dag("ingest_sweeper").test()
    assert str(run.state) == "success"

    rows = db.execute(
        "SELECT id, status::text, error_reason, attempts,"
        " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) FROM documents d WHERE tenant = %s",
        (tenant,),
    ).fetchall()
    state = {doc_id: (status, reason, attempts, chunks) for doc_id, status, reason, attempts, chunks in rows}
    assert state[ids["left"]][0] == "indexed" and state[ids["left"]][3] >= 1
    assert state[ids["stuck_once"]][:1] == ("indexed",) and state[ids["stuck_once"]][2] == 2
    status, reason, attempts, chunks = state[ids["stuck_thrice"]]
    assert status == "quarantined" and chunks == 0 and attempts == 3
    assert reason == "worker died during embedding 3 times"
    status, reason, attempts, chunks = state[ids["died_thrice"]]
    assert (status, reason, attempts, chunks) == ("quarantined", "worker died during parsing 3 times", 3, 0)
    assert state[ids["died_once"]][0] == "indexed" and state[ids["died_once"]][2] == 2
    assert state[ids["fresh"]][0] == "received"  # its own ingestion run is still on its way
    assert state[ids["old_version"]][0] == "indexed" and state[ids["old_version"]][3] >= 1
    version = db.execute("SELECT embedding_model_version FROM documents WHERE id = %s", (ids["old_version"],))
    assert version.fetchone() == (index_version,)
    db.execute("DELETE FROM documents WHERE tenant = %s", (tenant,))
    db.execute("DELETE FROM embedding_indexes WHERE model_version = %s", (retired,))
    db.commit()


def test_an_outage_fails_the_sweeper_run_naming_its_documents_without_using_up_attempts(
    dag_env: dict[str, str],
    stack: LocalStack,
    intake: Intake,
    db: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import socket

    tenant = f"sw{uuid.uuid4().hex[:8]}"
    doc_id = intake.receive(
        b"Left\n\nLeft received while Triton was down.", tenant=tenant, source_uri="file:///sweeper/left.txt"
    ).document.id

    def left_for_20_minutes() -> None:
        with psycopg.connect(Postgres(stack.ctx).superuser_dsn("rag"), autocommit=True) as su:
            su.execute("SET session_replication_role = replica")  # updated_at stays in the past
            su.execute(
                "UPDATE documents SET updated_at = now() - interval '20 minutes' WHERE id = %s", (doc_id,)
            )

    left_for_20_minutes()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("TRITON_GRPC_URL", f"127.0.0.1:{port}")
    monkeypatch.setenv("TRITON_TIMEOUT_S", "2")
    dag = load_dag("ingest_sweeper")
    dag.task_dict["process"].retries = 0  # fail at once here

    run = dag.test()
    assert str(run.state) == "failed"
    assert {(ti.task_id, str(ti.state)) for ti in run.get_task_instances()} >= {
        ("process", "failed"),
        ("report", "failed"),
    }
    row = db.execute(
        "SELECT status::text, attempts, outage_retries, error_reason FROM documents WHERE id = %s", (doc_id,)
    ).fetchone()
    assert row is not None and row[:3] == ("received", 0, 1)  # its attempt was given back
    logged = "".join(capfd.readouterr())
    assert f"{doc_id} (file:///sweeper/left.txt): received, attempts 0, outage retries 1" in logged
    assert f"last error: {row[3]}" in logged

    monkeypatch.setenv("TRITON_GRPC_URL", dag_env["TRITON_GRPC_URL"])  # Triton is back
    left_for_20_minutes()
    load_dag("ingest_sweeper").test()
    status = db.execute("SELECT status::text FROM documents WHERE id = %s", (doc_id,)).fetchone()
    assert status == ("indexed",)
    db.execute("DELETE FROM documents WHERE tenant = %s", (tenant,))
    db.commit()
