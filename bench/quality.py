"""Retrieval quality on a BEIR-format folder through the product's real path.

Documents are ingested by the ingestion code path (Intake -> Pipeline, as the Airflow DAG does)
into a tenant of their own, named after the corpus's sha256, so a rerun on the same corpus
reuses it. Each query goes through gRPC ``Search`` (top_k 100 chunks) in each mode; a document
ranks at its best chunk's place. Reports nDCG@10, Recall@100 and MRR@10 and writes TREC run files.

    python -m bench.quality                                  # SciFact in ../shared/data/scifact
    python -m bench.quality --data /path/to/beir/nfcorpus --split test
    python -m bench.quality --max-queries 50                 # a quick look
    python -m bench.quality --train-on train                 # learn from train labels (bench.learned)

Reference points (shared/NOTES.md, same model and machine): exact dense search 0.645 nDCG@10
on SciFact, BM25 0.657-0.679, their reciprocal rank fusion 0.712. Target: hybrid >= 0.72 and
never below the better of dense and full-text.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from psycopg_pool import ConnectionPool

from bench import beir, report
from bench.metrics import write_trec_run
from bench.target import Target, client_for, connect, stack_parser
from rag.settings import Settings
from rag.training.metrics import documents_from_chunks, evaluate

DEFAULT_DATA = beir.default_data()
TOP_K = 100
# (label, gRPC mode, rerank)
MODES: tuple[tuple[str, str, bool], ...] = (
    ("dense", "dense", False),
    ("fulltext", "fulltext", False),
    ("hybrid", "hybrid", False),
    ("hybrid+rerank", "hybrid", True),
)
# nDCG@10 on SciFact measured in-process on this machine (shared/NOTES.md).
REFERENCE_NDCG = {"dense": 0.645, "fulltext": 0.679, "hybrid": 0.712}
TARGET_HYBRID_NDCG = 0.72


@dataclass
class ModeResult:
    label: str
    metrics: dict[str, float] | None
    seconds: float
    docs_per_query: float
    skipped: str | None = None


def tenant_for(dataset: beir.BeirDataset) -> str:
    return f"beir-{dataset.name}-{dataset.digest[:12]}"[:64]


def source_uri(dataset: beir.BeirDataset, doc_id: str) -> str:
    return f"beir://{dataset.name}/{doc_id}.txt"


def ingested_target(args: argparse.Namespace) -> tuple[beir.BeirDataset, Target, str]:
    """The BEIR dataset of ``--data``, the stack of ``--state-dir``/``--start``, and the
    dataset's tenant on it, ingested (what a benchmark that searches the corpus starts with)."""
    dataset = beir.load(args.data)
    target = connect(args.state_dir, start=args.start)
    tenant, _ = ensure_ingested(target.settings, dataset)
    return dataset, target, tenant


def ensure_ingested(
    settings: Settings, dataset: beir.BeirDataset, *, batch: int = 256
) -> tuple[str, dict[str, str]]:
    """The dataset's tenant, ingesting what is missing; returns (tenant, document UUID -> BEIR id)."""
    from bench.indexing import ingest_texts, ingestion

    tenant = tenant_for(dataset)
    with ingestion(settings) as ingest:
        counts = ingest.documents.counts_by_status(tenant=tenant)
        if counts.get("indexed", 0) + counts.get("quarantined", 0) < len(dataset.corpus):
            items = [(source_uri(dataset, d), dataset.document_text(d)) for d in dataset.corpus]
            print(f"ingesting {len(items)} documents into tenant {tenant} ...", flush=True)
            began = time.perf_counter()

            def progress(done: int, total: int) -> None:
                rate = done / (time.perf_counter() - began)
                print(f"  {done}/{total} documents ({rate:.1f}/s)", flush=True)

            run = ingest_texts(items, tenant=tenant, ingestion=ingest, batch=batch, progress=progress)
            print(
                f"ingested: {run.indexed} indexed, {run.quarantined} quarantined, {run.chunks} chunks"
                f" in {time.perf_counter() - began:.0f} s",
                flush=True,
            )
        else:
            print(f"reusing tenant {tenant} ({counts['indexed']} documents indexed)", flush=True)
        by_uuid = beir_ids(ingest.pool, tenant, dataset)
        forget_cached_results(ingest.pool, tenant)
    return tenant, by_uuid


def forget_cached_results(pool: ConnectionPool, tenant: str) -> None:
    """Move the tenant to a new generation, so no result cached by an earlier server is served.

    Cache keys carry the tenant's generation but not the ranking code: after a change to the
    server (fusion, BM25 parameters) a rerun would otherwise read the old rankings from Redis
    or disk.
    """
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO tenant_generations (tenant) VALUES (%s)"
            " ON CONFLICT (tenant) DO UPDATE SET generation = tenant_generations.generation + 1",
            (tenant,),
        )


def beir_ids(pool: ConnectionPool, tenant: str, dataset: beir.BeirDataset) -> dict[str, str]:
    """Document UUID (as the API returns it) -> the BEIR document id it was ingested from."""
    from bench.indexing import documents_by_source

    prefix = f"beir://{dataset.name}/"
    return {
        uid: uri[len(prefix) : -len(".txt")]
        for uid, uri in documents_by_source(pool, tenant).items()
        if uri.startswith(prefix)
    }


def reranker_loaded(settings: Settings) -> bool:
    from rag.adapters.triton import RERANKER, BlockingTriton, TritonOptions

    with BlockingTriton(TritonOptions(settings.TRITON_GRPC_URL, timeout_s=5.0)) as triton:
        return triton.model_ready(RERANKER)


def run_mode(
    address: str,
    settings: Settings,
    tenant: str,
    queries: dict[str, str],
    doc_of: dict[str, str],
    *,
    mode: str,
    rerank: bool,
    top_k: int = TOP_K,
    workers: int = 4,
) -> dict[str, list[tuple[str, float]]]:
    """Query id -> document ranking, every query sent through gRPC Search."""
    clients = [client_for(address, settings, tenant) for _ in range(workers)]

    def one(item: tuple[int, tuple[str, str]]) -> tuple[str, list[tuple[str, float]]]:
        n, (qid, text) = item
        client = clients[n % workers]
        for attempt in range(5):
            try:
                response = client.search(text, top_k=top_k, mode=mode, rerank=rerank)
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))
        chunks = [(doc_of.get(hit.document_id, hit.document_id), hit.score) for hit in response.results]
        return qid, documents_from_chunks(chunks)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(pool.map(one, enumerate(queries.items())))
    finally:
        for client in clients:
            client.close()


def evaluate_modes(
    address: str,
    settings: Settings,
    tenant: str,
    dataset: beir.BeirDataset,
    doc_of: dict[str, str],
    *,
    rerank_available: bool,
    runs_dir: Path | None = None,
    top_k: int = TOP_K,
    modes: tuple[tuple[str, str, bool], ...] = MODES,
    ndcg_k: int = 10,
    recall_k: int = 100,
) -> list[ModeResult]:
    results = []
    for label, mode, rerank in modes:
        if rerank and not rerank_available:
            results.append(ModeResult(label, None, 0.0, 0.0, skipped="skipped: no reranker loaded"))
            continue
        began = time.perf_counter()
        run = run_mode(
            address, settings, tenant, dataset.queries, doc_of, mode=mode, rerank=rerank, top_k=top_k
        )
        seconds = time.perf_counter() - began
        if runs_dir is not None:
            write_trec_run(runs_dir / f"{dataset.name}-{label}.trec", run, f"rag-{label}")
        metrics = evaluate(run, dataset.qrels, ndcg_k=ndcg_k, recall_k=recall_k)
        per_query = sum(len(r) for r in run.values()) / max(1, len(run))
        results.append(ModeResult(label, metrics, seconds, per_query))
    return results


def render(dataset: beir.BeirDataset, results: list[ModeResult]) -> tuple[str, dict[str, Any]]:
    best_single = max(
        (r.metrics["ndcg@10"] for r in results if r.metrics and r.label in {"dense", "fulltext"}), default=0.0
    )
    rows: list[list[Any]] = []
    for r in results:
        if r.metrics is None:
            rows.append([r.label, r.skipped, None, None, None, None, None])
            continue
        reference = REFERENCE_NDCG.get(r.label) if dataset.name == "scifact" else None
        rows.append(
            [
                r.label,
                r.metrics["ndcg@10"],
                r.metrics["recall@100"],
                r.metrics["mrr@10"],
                report.ratio(r.metrics["ndcg@10"], reference),
                f"{r.docs_per_query:.0f}",
                f"{len(dataset.queries) / r.seconds:.0f}" if r.seconds else None,
            ]
        )
    hybrid = next((r for r in results if r.label == "hybrid" and r.metrics), None)
    checks: dict[str, Any] = {}
    if hybrid and hybrid.metrics:
        value = hybrid.metrics["ndcg@10"]
        checks = {
            "hybrid_ndcg10": value,
            "hybrid_vs_target": value / TARGET_HYBRID_NDCG,
            "hybrid_target_met": value >= TARGET_HYBRID_NDCG,
            "hybrid_vs_best_single": value / best_single if best_single else None,
            "hybrid_not_below_best_single": value >= best_single,
        }
    title = (
        f"Retrieval quality: {dataset.name} ({len(dataset.corpus)} documents, {len(dataset.queries)}"
        f" {dataset.split} queries), gRPC Search top_k {TOP_K} chunks -> documents; {report.load_now()}"
    )
    text = report.table(
        title, ["mode", "nDCG@10", "R@100", "MRR@10", "vs ref", "docs/query", "queries/s"], rows
    )
    if checks:
        target_note = report.verdict(checks["hybrid_target_met"])
        single_note = report.verdict(checks["hybrid_not_below_best_single"])
        text += (
            f"\nhybrid nDCG@10 {checks['hybrid_ndcg10']:.3f}: {checks['hybrid_vs_target']:.2f}x the 0.72"
            f" target ({target_note}); {checks['hybrid_vs_best_single'] or 0:.2f}x the better of dense"
            f" and full-text ({single_note})"
        )
    if dataset.name == "scifact":
        text += (
            "\nvs ref: nDCG@10 / in-process reference (exact dense 0.645, BM25 0.679, RRF 0.712; NOTES.md)"
        )
    payload = {
        "dataset": {
            "name": dataset.name,
            "path": str(dataset.path),
            "split": dataset.split,
            "documents": len(dataset.corpus),
            "queries": len(dataset.queries),
        },
        "top_k_chunks": TOP_K,
        "modes": {
            r.label: (r.metrics if r.metrics else {"skipped": r.skipped})
            | {"seconds": r.seconds, "documents_per_query": r.docs_per_query}
            for r in results
        },
        "reference_ndcg10": REFERENCE_NDCG if dataset.name == "scifact" else None,
        "checks": checks,
    }
    return text, payload


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.quality", __doc__, data_help="a BEIR folder (default: %(default)s)")
    parser.add_argument(
        "--split", default=None, help="qrels split: test, dev or train (default: the first found)"
    )
    parser.add_argument(
        "--max-queries", type=int, default=None, help="evaluate only the first N judged queries"
    )
    parser.add_argument("--results", type=Path, default=report.RESULTS, help="where JSON and TREC runs go")
    learning = parser.add_argument_group("learned relevance (bench.learned)")
    learning.add_argument(
        "--train-on",
        default=None,
        metavar="SPLIT",
        help="import SPLIT's qrels as labels, fine-tune the embedder and train a reranker through the"
        " DAGs' task code, then evaluate (on --split, or on the held-back queries when it is SPLIT)",
    )
    learning.add_argument("--seed", type=int, default=13, help="which queries are held back (default 13)")
    learning.add_argument("--held-back-fraction", type=float, default=0.2)
    learning.add_argument("--embedder-epochs", type=int, default=1)
    learning.add_argument("--reranker-max-steps", type=int, default=0, help="0: one epoch")
    learning.add_argument("--skip-embedder", action="store_true")
    learning.add_argument("--skip-reranker", action="store_true")
    args = parser.parse_args(argv)
    dataset = beir.load(args.data, args.split, max_queries=args.max_queries)
    target = connect(args.state_dir, start=args.start)
    tenant, doc_of = ensure_ingested(target.settings, dataset)
    if args.train_on:
        return learn(args, dataset, target, tenant, doc_of)
    results = evaluate_modes(
        target.grpc_address,
        target.settings,
        tenant,
        dataset,
        doc_of,
        rerank_available=reranker_loaded(target.settings),
        runs_dir=args.results,
    )
    text, payload = render(dataset, results)
    print(text)
    path = report.save("quality", payload | {"tenant": tenant}, args.results)
    print(f"wrote {path} and TREC runs in {args.results}")
    return 0


def learn(
    args: argparse.Namespace,
    evaluation: beir.BeirDataset,
    target: Target,
    tenant: str,
    doc_of: dict[str, str],
) -> int:
    from bench.learned import LoopParams, run_loop

    train = beir.load(args.data, args.train_on)
    loop = LoopParams(
        held_back_fraction=args.held_back_fraction,
        seed=args.seed,
        embedder_epochs=args.embedder_epochs,
        reranker_max_steps=args.reranker_max_steps,
        skip_embedder=args.skip_embedder,
        skip_reranker=args.skip_reranker,
    )
    before, after, trainings, judged = run_loop(target, tenant, train, evaluation, doc_of, loop)
    payload: dict[str, Any] = {
        "train_on": args.train_on,
        "loop": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    for name, results in (("before", before), ("after", after)):
        text, part = render(judged, results)
        print(f"\n{name} training:\n{text}")
        payload[name] = part
    payload["trainings"] = trainings
    path = report.save("quality-learned", payload | {"tenant": tenant}, args.results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
