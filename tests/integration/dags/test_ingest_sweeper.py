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
