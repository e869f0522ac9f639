"""Start the ingestion of an uploaded document: a run of the ``ingest_documents`` DAG.

The upload path (``DocumentService.Upload``) calls this after the document is recorded. Airflow
being unreachable (or not configured) is no failure of the upload: the document stays
``received`` and the ``ingest_sweeper`` DAG picks it up later, so nothing is lost.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from rag.core.errors import RagError

log = logging.getLogger(__name__)

INGEST_DAG = "ingest_documents"


class DagTrigger(Protocol):
    """What starting a run needs from Airflow (``rag.adapters.airflow.AirflowClient`` provides it)."""

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str: ...


class IngestionTrigger:
    """Starts one ingestion run per uploaded document; without Airflow, starts none."""

    def __init__(self, airflow: DagTrigger | None) -> None:
        self._airflow = airflow

    def start(self, tenant: str, document_id: uuid.UUID) -> str:
        """The id of the DAG run that ingests ``document_id``; "" when none was started
        (no Airflow configured, or Airflow failed: the sweeper ingests the document later)."""
        if self._airflow is None:
            return ""
        try:
            return self._airflow.trigger(INGEST_DAG, {"document_ids": [str(document_id)], "tenant": tenant})
        except RagError as exc:
            log.warning("ingestion of %s deferred to the sweeper: %s", document_id, exc)
            return ""
