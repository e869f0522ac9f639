"""IngestionTrigger: one ingest_documents run per upload; Airflow's failure defers, never fails."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from rag.core.errors import RagError, Unavailable
from rag.ingestion.trigger import INGEST_DAG, IngestionTrigger


class FakeAirflow:
    def __init__(self, *, fails_with: RagError | None = None) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []
        self.fails_with = fails_with

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        if self.fails_with is not None:
            raise self.fails_with
        self.runs.append((dag_id, conf))
        return f"manual__{len(self.runs)}"


def test_an_upload_starts_one_run_of_the_ingestion_dag_for_its_document() -> None:
    airflow = FakeAirflow()
    document = uuid.uuid4()
    assert IngestionTrigger(airflow).start("acme", document) == "manual__1"
    assert airflow.runs == [(INGEST_DAG, {"document_ids": [str(document)], "tenant": "acme"})]
    assert INGEST_DAG == "ingest_documents"


def test_airflow_unreachable_leaves_the_document_to_the_sweeper(caplog: pytest.LogCaptureFixture) -> None:
    document = uuid.uuid4()
    trigger = IngestionTrigger(FakeAirflow(fails_with=Unavailable("Airflow is unreachable")))
    with caplog.at_level(logging.WARNING, logger="rag.ingestion.trigger"):
        assert trigger.start("acme", document) == ""
    assert f"ingestion of {document} deferred to the sweeper" in caplog.text


def test_a_programming_error_is_not_taken_for_an_outage() -> None:
    class Broken:
        def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
            raise KeyError("conf")

    with pytest.raises(KeyError):
        IngestionTrigger(Broken()).start("acme", uuid.uuid4())


def test_without_airflow_no_run_is_started() -> None:
    assert IngestionTrigger(None).start("acme", uuid.uuid4()) == ""
