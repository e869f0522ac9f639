"""Ingest documents: parse, chunk, embed (Triton, batch priority) and index them."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, TriggerRule, task
from rag_dag_defaults import INGEST_BATCH_DOCUMENTS, Retries, chunking_params, in_batches, rag_dag

from rag.core.auth import TENANT_PATTERN

log = logging.getLogger(__name__)
INDEX = Asset("rag://index/chunks")
OTHERS_WAIT_S = 900  # about as long as `process`'s outage retries last

DOC = """
### Ingest documents

Reads every file under **source** (a local path on the workers, or `s3://bucket/prefix`), or the
**document_ids** an upload recorded (give one of the two, or both; a run with neither fails at
once), and takes each document through
`received -> parsed -> chunked -> embedded -> indexed`. A file that cannot be parsed is
**quarantined with its reason**; one bad file never fails the run.

The run is green only when every document it took on ended `indexed` or `quarantined`. A
dependency that is down (Triton, PostgreSQL, object storage) puts the batch's unfinished documents
back to `received` (an outage uses up none of their attempts) and fails its `process` task, which
Airflow retries with exponential backoff; if the retries run out, `report` fails the run and names
each unfinished document with its status and last error (the sweeper picks them up later).

- **source** must resolve into a folder of the workers' `INGEST_ALLOWED_ROOTS` (default: the
  checkout's `samples/`) or a bucket of `INGEST_ALLOWED_BUCKETS`; anything else, and the stack's
  state directory always, fails the run at once with the setting to change.
- Unchanged files are a no-op (sha256 content hash); a changed file replaces its chunks in one
  transaction; with *delete_missing*, documents whose file is gone from *source* are deleted.
- Documents are processed in batches of **batch_size** (default 128) mapped over parallel
  tasks; retrying a task never duplicates rows and skips the documents it already indexed.
- Progress: the counts per status are in the `report` task log, and in the gRPC `GetStats`.
"""


@rag_dag(
    "ingest_documents",
    description="Parse, chunk, embed and index documents; quarantine what cannot be read",
    doc_md=DOC,
    schedule=None,
    max_active_runs=4,
    tags=["ingestion"],
    retries=Retries(3, timedelta(seconds=10), up_to=timedelta(minutes=5), timeout=timedelta(hours=2)),
    params={
        # Source or document ids: either one is enough, so neither is required (a type without
        # "null" is a required field in the trigger form); `receive` refuses a run with neither.
        "source": Param(
            None,
            type=["null", "string"],
            title="Source",
            description=(
                "A local path on the workers under INGEST_ALLOWED_ROOTS, or s3://bucket/prefix in "
                "INGEST_ALLOWED_BUCKETS. Give this or Document ids."
            ),
        ),
        "document_ids": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "format": "uuid"},
            title="Document ids",
            description="Documents already received (e.g. by the gRPC Upload). Give these or Source.",
        ),
        "tenant": Param("default", type="string", pattern=f"^{TENANT_PATTERN}$", title="Tenant"),
        **chunking_params(),
        "batch_size": Param(
            INGEST_BATCH_DOCUMENTS,
            type="integer",
            minimum=1,
            maximum=10000,
            title="Documents per task",
            description="Each mapped task processes this many documents (a task takes seconds to start).",
        ),
        "delete_missing": Param(
            True,
            type="boolean",
            title="Delete missing",
            description="Delete documents whose file left the source.",
        ),
    },
)
def ingest_documents() -> None:
    @task(retries=6)  # an outage of object storage or PostgreSQL: retried as `process` is
    def receive(params: dict[str, Any] | None = None) -> list[list[str]]:
        """Record the source's files (or the given ids) as received; return batches of ids."""
        import uuid

        from airflow.sdk.exceptions import AirflowFailException
        from rag_hooks import RagHook

        from rag.core.errors import InvalidInput
        from rag.ingestion.sources import SourcePolicy, receive_source

        assert params is not None
        tenant, source, document_ids = params["tenant"], params["source"], params["document_ids"] or []
        if not source and not document_ids:  # the Params cannot say "one of the two"
            raise AirflowFailException(
                "nothing to ingest: give source (a folder under INGEST_ALLOWED_ROOTS or "
                "s3://bucket/prefix) or document_ids (documents already received)"
            )
        with RagHook() as hook:
            documents = hook.documents()
            wanted = [uuid.UUID(i) for i in document_ids]
            if source:
                try:
                    report = receive_source(
                        hook.intake(),
                        source,
                        tenant=tenant,
                        delete_missing=params["delete_missing"],
                        policy=SourcePolicy.from_settings(hook.settings),
                    )
                except InvalidInput as exc:  # a refused or malformed source: a retry won't help
                    raise AirflowFailException(str(exc)) from None
                log.info(
                    "source %s: %d new or changed, %d unchanged, %d deleted, %d unreadable",
                    source,
                    len(report.pending),
                    report.unchanged,
                    len(report.deleted),
                    len(report.rejected),
                )
                for uri, reason in report.rejected.items():
                    log.warning("unreadable: %s: %s", uri, reason)
                wanted += report.documents
            # Only this run's documents (the source's, unchanged ones a crashed run left
            # `received` included, and the given ids): another document of the tenant waiting
            # in `received` belongs to its own run (an upload's) or to the sweeper.
            pending = [str(i) for i in documents.pending(tenant=tenant, ids=wanted)] if wanted else []
        log.info("%d documents to process", len(pending))
        # Never no batch: `process` mapped over nothing is skipped, and the report after it
        # with it, which let a run whose given documents another run held turn green unchecked.
        return in_batches(pending, params["batch_size"]) or [[]]

    # Outage retries back off 10 s, 20 s, ... up to 5 min: about 10 minutes of outage in all.
    # The report waits as long for documents another run is processing (its retries included).
    @task(max_active_tis_per_dagrun=2, retries=6)
    def process(batch: list[str], params: dict[str, Any] | None = None) -> dict[str, int]:
        """Parse, chunk, embed and index one batch; a document's failure stays with it, an
        outage fails the task (after the batch) so that Airflow retries it."""
        from airflow.sdk import get_current_context
        from rag_hooks import RagHook

        from rag.core.chunking import ChunkingOptions

        assert params is not None
        ti = get_current_context()["ti"]  # a retry is the same task instance: it owns the claims
        owner = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"
        chunking = ChunkingOptions(params["chunk_tokens"], params["overlap_tokens"])
        with RagHook() as hook:
            return hook.process_batch(batch, chunking, owner=owner)

    @task(outlets=[INDEX], trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def report(batches: list[list[str]], params: dict[str, Any] | None = None) -> dict[str, int]:
        """Refresh the BM25 statistics and report the run's documents per status; fail the run
        naming each document it took on, or was given by id, that is not indexed or quarantined
        (runs even when ``process`` tasks failed). A given document that another run is
        processing is waited for, up to OTHERS_WAIT_S."""
        import uuid

        from airflow.sdk.exceptions import AirflowFailException
        from rag_hooks import RagHook

        from rag.ingestion.pipeline import await_others, unfinished_report

        assert params is not None
        taken = [uuid.UUID(doc_id) for batch in batches for doc_id in batch]
        # The given ids this run did not take on are being processed by another run (or were
        # already done): the run is green only once they are terminal too.
        asked = list(dict.fromkeys([*taken, *(uuid.UUID(i) for i in params["document_ids"] or [])]))
        with RagHook() as hook:
            documents = hook.documents()
            left = await_others(documents, asked, timeout_s=OTHERS_WAIT_S)
            if left:
                log.warning("%d documents still processed elsewhere after %d s", len(left), OTHERS_WAIT_S)
            documents.refresh_lexical_statistics(tenants=[params["tenant"]])  # the only one it touched
            run = {k: n for k, n in documents.counts_by_status(ids=taken).items() if n} if taken else {}
            totals = documents.counts_by_status(tenant=params["tenant"])
            unfinished = unfinished_report(documents, asked)
        log.info("this run's %d documents by status: %s", len(taken), run)
        log.info("tenant %s documents by status: %s", params["tenant"], totals)
        if unfinished:
            raise AirflowFailException(unfinished)
        return run

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    batches: Any = receive()
    process.expand(batch=batches) >> report(batches)


ingest_documents()
