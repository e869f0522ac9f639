"""Every 10 minutes: retry or quarantine documents stuck mid-pipeline, ingest those left received."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Param, TriggerRule, task
from rag_dag_defaults import INGEST_BATCH_DOCUMENTS, Retries, chunking_params, in_batches, rag_dag

log = logging.getLogger(__name__)

DOC = """
### Ingestion sweeper

Every accepted document must end `indexed` or `quarantined`; this DAG makes sure of it.

- **sweep_stuck**: a document in `parsed`, `chunked` or `embedded` past its deadline, or
  `received` under a claim that ran out, lost its worker. With fewer than *max_attempts*
  attempts it goes back to `received`; otherwise it is quarantined with the reason
  *worker died during <stage> N times* (parsing, chunking, embedding or indexing).
  A document indexed with a *retired* embedding version (an ingestion that wrote after a
  re-embedding's cutover) goes back to `received` too.
- **find_received**: documents left `received` for more than *received_grace_minutes* (an
  upload while Airflow was down, a retry after a transient error), plus the ones just sent back.
- **process**: the same pipeline as `ingest_documents` (parse, chunk, embed through Triton at
  batch priority, index), in batches mapped over parallel tasks. A dependency that is down puts
  the documents back to `received` (using up none of their attempts) and fails the task, which
  Airflow retries with backoff.
- **report**: refreshes the BM25 statistics when something was indexed; logs counts per status;
  fails the run, naming each with its status and last error, when a document the run took on
  is neither `indexed` nor `quarantined`.
"""


@rag_dag(
    "ingest_sweeper",
    description="Retry or quarantine documents stuck past their deadline; ingest documents left received",
    doc_md=DOC,
    schedule=timedelta(minutes=10),
    dagrun_timeout=timedelta(minutes=60),
    tags=["ingestion"],
    retries=Retries(2, timedelta(seconds=30), up_to=timedelta(minutes=5), timeout=timedelta(minutes=45)),
    params={
        "max_attempts": Param(
            3,
            type="integer",
            minimum=1,
            maximum=20,
            title="Max attempts",
            description="A document whose worker died, with this many attempts, is quarantined, not retried.",
        ),
        "received_grace_minutes": Param(
            10,
            type="integer",
            minimum=0,
            maximum=1440,
            title="Grace for received (minutes)",
            description="A received document younger than this is left to the run that received it.",
        ),
        **chunking_params(),
    },
)
def ingest_sweeper() -> None:
    @task
    def sweep_stuck(params: dict[str, Any] | None = None) -> dict[str, list[str]]:
        """Back to received (attempts left) or quarantined: documents whose worker died."""
        from rag_hooks import RagHook

        assert params is not None
        with RagHook() as hook:
            documents = hook.documents()
            swept = documents.sweep(max_attempts=params["max_attempts"])
            # Indexed with a retired embedding version (written after a re-embedding's cutover).
            stale = documents.requeue_retired_versions()
        for doc_id in stale:
            log.info("%s: indexed with a retired embedding version, back to received", doc_id)
        for doc_id in swept.reset:
            log.info("%s: its worker died, back to received for another attempt", doc_id)
        for doc_id in swept.quarantined:
            log.warning("%s: its workers kept dying, quarantined", doc_id)
        return {
            "reset": [str(i) for i in [*swept.reset, *stale]],
            "quarantined": [str(i) for i in swept.quarantined],
        }

    @task
    def find_received(swept: dict[str, list[str]], params: dict[str, Any] | None = None) -> list[list[str]]:
        """Documents nobody is processing, in batches."""
        from rag_hooks import RagHook

        assert params is not None
        with RagHook() as hook:
            stale = hook.documents().stale_received(older_than_s=params["received_grace_minutes"] * 60)
        pending = list(dict.fromkeys([*swept["reset"], *(str(i) for i in stale)]))
        log.info("%d documents to process (%d sent back by the sweep)", len(pending), len(swept["reset"]))
        return in_batches(pending, INGEST_BATCH_DOCUMENTS)

    @task(max_active_tis_per_dagrun=2)
    def process(batch: list[str], params: dict[str, Any] | None = None) -> dict[str, int]:
        """The ingestion pipeline for one batch; a document's failure stays with it, an outage
        fails the task (after the batch) so that Airflow retries it."""
        from rag_hooks import RagHook

        from rag.core.chunking import ChunkingOptions

        assert params is not None
        chunking = ChunkingOptions(params["chunk_tokens"], params["overlap_tokens"])
        with RagHook() as hook:
            return hook.process_batch(batch, chunking, max_attempts=params["max_attempts"])

    @task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def report(swept: dict[str, list[str]], batches: list[list[str]]) -> dict[str, int]:
        """Refresh BM25 statistics if anything was indexed; log the counts; fail the run naming
        each document it took on that is not indexed or quarantined (runs even when ``process``
        tasks failed)."""
        import uuid

        from airflow.sdk.exceptions import AirflowFailException
        from rag_hooks import RagHook

        from rag.ingestion.pipeline import unfinished_report

        taken = [uuid.UUID(doc_id) for batch in batches for doc_id in batch]
        run = {"reset": len(swept["reset"]), "quarantined_stuck": len(swept["quarantined"])}
        with RagHook() as hook:
            documents = hook.documents()
            if taken:
                run.update({k: n for k, n in documents.counts_by_status(ids=taken).items() if n})
            if run.get("indexed"):
                documents.refresh_lexical_statistics()
            totals = documents.counts_by_status()
            unfinished = unfinished_report(documents, taken)
        log.info("this run: %s", run)
        log.info("documents by status: %s", totals)
        if unfinished:
            raise AirflowFailException(unfinished)
        return run

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    swept: Any = sweep_stuck()
    batches: Any = find_received(swept)
    process.expand(batch=batches) >> report(swept, batches)


ingest_sweeper()
