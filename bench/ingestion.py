"""Ingestion throughput end to end vs the raw in-process embedding of the same chunk texts.

A sample of a BEIR corpus (default: the first 300 SciFact abstracts) is ingested as plain-text
documents into a fresh tenant through the product's ingestion path (Intake.receive, then
Pipeline: fetch, parse, chunk, embed through Triton, write chunks and BM25 postings, refresh the
BM25 statistics), and deleted afterwards. The floor is the same chunk texts encoded in this
process by sentence-transformers in batches of 32: the embedding work alone, with no transport,
queueing or database. Target: pipeline throughput >= 0.9x the floor.

    python -m bench.ingestion [--documents 300] [--compare]

A run of the ``ingest_documents`` DAG over the same documents (written as files to a folder,
triggered through Airflow's REST API, timed from trigger to the run's end) shows what an operator
gets, scheduling and task start-up included (``--no-dag`` skips it).

``--compare`` also runs the per-document path (one ``Pipeline.process`` and one Triton request
per document, what the pipeline did before ``process_many``) on another fresh tenant.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import beir, report
from bench.indexing import IngestRun, chunk_texts, ingest_texts, ingestion
from bench.target import connect, stack_parser

STAGES = ("fetch", "parse", "chunk", "embed", "write")


def run_once(
    settings: Any, items: list[tuple[str, str]], *, per_document: bool
) -> tuple[IngestRun, list[str]]:
    tenant = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    with ingestion(settings) as ingest:
        run = ingest_texts(
            items, tenant=tenant, ingestion=ingest, batch=len(items), per_document=per_document
        )
        texts = chunk_texts(ingest.pool, tenant)
        ids = [uuid.UUID(i) for i in _ids(ingest.pool, tenant)]
        ingest.documents.delete(ids, tenant=tenant)
        ingest.documents.refresh_lexical_statistics()
    return run, texts


@dataclass
class DagRun:
    indexed: int
    quarantined: int
    chunks: int
    seconds: float  # trigger to the run's end, Airflow scheduling and task start-up included
    state: str


def dag_once(settings: Any, items: list[tuple[str, str]], *, timeout_s: float = 3600.0) -> DagRun:
    """The operator's path: files in a folder, one ``ingest_documents`` run over Airflow's REST API."""
    from rag.adapters.airflow import AirflowClient

    tenant = f"bench-dag-{uuid.uuid4().hex[:8]}"
    if not settings.INGEST_ALLOWED_ROOTS:
        raise SystemExit("the DAG path reads files from INGEST_ALLOWED_ROOTS: set it, or pass --no-dag")
    # Inside a folder the workers may read (INGEST_ALLOWED_ROOTS; default the checkout's samples/).
    with tempfile.TemporaryDirectory(prefix="bench-dag-", dir=settings.INGEST_ALLOWED_ROOTS[0]) as folder:
        for n, (_, text) in enumerate(items):
            (Path(folder) / f"{n:06d}.txt").write_text(text, encoding="utf-8")
        airflow = AirflowClient(
            settings.AIRFLOW_API_URL,
            settings.AIRFLOW_USERNAME,
            settings.AIRFLOW_PASSWORD.get_secret_value() if settings.AIRFLOW_PASSWORD else None,
        )
        try:
            began = time.perf_counter()
            run_id = airflow.trigger("ingest_documents", {"source": folder, "tenant": tenant})
            state = "queued"
            while time.perf_counter() - began < timeout_s:
                state = airflow.run_state("ingest_documents", run_id)
                if state in {"success", "failed"}:
                    break
                time.sleep(0.5)
            seconds = time.perf_counter() - began
        finally:
            airflow.close()
    with ingestion(settings) as ingest:
        counts = ingest.documents.counts_by_status(tenant=tenant)
        chunks = len(chunk_texts(ingest.pool, tenant))
        ingest.documents.delete([uuid.UUID(i) for i in _ids(ingest.pool, tenant)], tenant=tenant)
        ingest.documents.refresh_lexical_statistics()
    return DagRun(counts.get("indexed", 0), counts.get("quarantined", 0), chunks, seconds, state)


def _ids(pool: Any, tenant: str) -> list[str]:
    with pool.connection() as conn:
        return [str(r[0]) for r in conn.execute("SELECT id FROM documents WHERE tenant = %s", (tenant,))]


def floor_seconds(texts: list[str], rounds: int = 1) -> float:
    """Seconds to encode ``texts`` in-process, batch 32 (sentence-transformers; best of rounds)."""
    from rag.models.embedding import Embedder

    embedder = Embedder(batch_size=32)
    embedder.encode(texts[:32])
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        embedder.encode(texts)
        best = min(best, time.perf_counter() - began)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.ingestion", __doc__, data_help="BEIR folder to sample documents from")
    parser.add_argument(
        "--documents", type=int, default=300, help="documents to ingest (default %(default)s)"
    )
    parser.add_argument("--compare", action="store_true", help="also run the per-document path")
    parser.add_argument(
        "--no-dag", action="store_true", help="skip the run of the ingest_documents DAG through Airflow"
    )
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    dataset = beir.load(args.data)
    nonce = uuid.uuid4().hex[:8]  # fresh content: the intake would skip already-stored bytes
    items = [
        (f"bench://{dataset.name}/{d}.txt", f"{dataset.document_text(d)}\n\n[{nonce}]")
        for d in list(dataset.corpus)[: args.documents]
    ]
    target = connect(args.state_dir, start=args.start)
    paths = [("process_many", False)] + ([("per-document", True)] if args.compare else [])
    rows, runs = [], {}
    texts: list[str] = []
    for label, per_document in paths:
        run, texts = run_once(target.settings, items, per_document=per_document)
        runs[label] = run
    # The floor before and after another pipeline run: shared cores drift, the mean of the two
    # brackets the pipeline's conditions better than one measurement.
    floor_after = floor_seconds(texts)
    check, _ = run_once(target.settings, items, per_document=False)
    floor_again = floor_seconds(texts)
    runs["process_many (again)"] = check
    dag = None if args.no_dag else dag_once(target.settings, items)
    floor_s = (floor_after + floor_again) / 2
    n_docs, n_chunks = len(items), len(texts)
    floor_docs = n_docs / floor_s
    for label, run in runs.items():
        pipeline_s = run.process_s + run.refresh_s
        docs_s = run.indexed / pipeline_s
        rows.append(
            [
                label,
                f"{docs_s:.1f}",
                f"{run.chunks / pipeline_s:.1f}",
                report.ratio(docs_s, floor_docs),
                f"{n_docs / (pipeline_s + run.receive_s):.1f}",
                *(f"{run.stages_s.get(s, 0.0):.1f}" for s in STAGES),
                f"{run.receive_s:.1f}",
            ]
        )
    if dag is not None:
        dag_docs = dag.indexed / dag.seconds
        rows.append(
            [
                f"ingest_documents DAG ({dag.state})",
                f"{dag_docs:.1f}",
                f"{dag.chunks / dag.seconds:.1f}",
                report.ratio(dag_docs, floor_docs),
                f"{dag_docs:.1f}",
                *("-" for _ in STAGES),
                "incl.",
            ]
        )
    rows.append(
        [
            "floor: in-process batch 32",
            f"{floor_docs:.1f}",
            f"{n_chunks / floor_s:.1f}",
            "1.00x",
            "-",
            "-",
            "-",
            "-",
            f"{floor_s:.1f}",
            "-",
            "-",
        ]
    )
    title = (
        f"Ingestion: {n_docs} {dataset.name} documents, {n_chunks} chunks (chunk 200 tokens, overlap 32);"
        f" {report.load_now()}"
    )
    header = [
        "path",
        "docs/s",
        "chunks/s",
        "vs floor",
        "docs/s +receive",
        *(f"{s} s" for s in STAGES),
        "receive s",
    ]
    print(report.table(title, header, rows))
    ratio = statistics.mean(
        r.indexed / (r.process_s + r.refresh_s) / floor_docs
        for label, r in runs.items()
        if label.startswith("process_many")
    )
    print(
        f"process_many {ratio:.2f}x the in-process floor, mean of its runs"
        f" (target >= 0.9x: {report.verdict(ratio >= 0.9)});"
        " stage seconds are summed per document (embed: a group's time shared by its chunks, overlapping"
        " the next group's fetch/parse/chunk)"
    )
    if dag is not None:
        print(
            f"ingest_documents DAG: {dag.indexed} indexed, {dag.quarantined} quarantined"
            f" in {dag.seconds:.1f} s from trigger to end"
            f" ({dag.indexed / dag.seconds / floor_docs:.2f}x the floor;"
            " includes Airflow scheduling and task start-up)"
        )
    payload = {
        "documents": n_docs,
        "chunks": n_chunks,
        "floor": {
            "seconds": floor_s,
            "seconds_each": [floor_after, floor_again],
            "docs_per_s": floor_docs,
            "chunks_per_s": n_chunks / floor_s,
        },
        "runs": {
            label: {
                "indexed": r.indexed,
                "quarantined": r.quarantined,
                "chunks": r.chunks,
                "receive_s": r.receive_s,
                "process_s": r.process_s,
                "refresh_s": r.refresh_s,
                "docs_per_s": r.indexed / (r.process_s + r.refresh_s),
                "chunks_per_s": r.chunks / (r.process_s + r.refresh_s),
                "vs_floor": r.indexed / (r.process_s + r.refresh_s) / floor_docs,
                "stages_s": r.stages_s,
            }
            for label, r in runs.items()
        },
        "dag": None
        if dag is None
        else {
            **asdict(dag),
            "docs_per_s": dag.indexed / dag.seconds,
            "vs_floor": dag.indexed / dag.seconds / floor_docs,
        },
        "checks": {"vs_floor": ratio, "target_met": ratio >= 0.9},
    }
    path = report.save("ingestion", payload, args.results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
