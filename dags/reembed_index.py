"""Re-embed every chunk with a newly promoted embedder into a shadow index; gate; cut over."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, task
from rag_dag_defaults import Retries, rag_dag

log = logging.getLogger(__name__)
EMBEDDER = Asset("rag://models/embedder")  # updated by the embedder's promotion
INDEX = Asset("rag://index/chunks")

DOC = """
### Re-embed the index with a new embedder version

Runs when the embedder is promoted (asset `rag://models/embedder`) or by hand with
*model_version*. Empty *model_version*: the version named by the asset event, else the newest
`building` row of `embedding_indexes` (a promotion records one).

1. **plan**: the new version becomes `building`; the serving version's chunks are split into
   id ranges of *chunks_per_task*.
2. **embed_range** (mapped): shadow rows in `chunks` under the new version, with the same text,
   page and spans, the new vector and their own BM25 postings. Search keeps filtering on the
   active version, so it serves the old index all along. A retried task resumes.
3. **evaluate**: the quality gate. Self-retrieval on *sample_size* chunks (query: a sentence of
   the chunk; hit: the chunk in the top 10 of the whole new index) and the optional
   *labelled_queries*; each recall@10 must reach *recall_threshold*. After `finetune_embedder`
   (its Asset event, or *held_back_labels*), the tenant's held-back labelled queries too: the
   new index's hybrid nDCG@10 must be at least the serving index's. Below it, the version is
   marked `failed` with the reason, its shadow rows are deleted, the embedder that served before
   serves again, and the run fails saying why.
4. **cut_over**: new version `active`, old one `retired`, in one transaction (after embedding
   what was ingested meanwhile).
5. **retire_old**: deletes the old version's chunks, refreshes BM25 statistics.
"""


@rag_dag(
    "reembed_index",
    description="Shadow re-embedding for a new embedder version, quality gate, atomic cutover",
    doc_md=DOC,
    schedule=[EMBEDDER],
    tags=["ingestion", "models"],
    retries=Retries(3, timedelta(seconds=30), up_to=timedelta(minutes=10), timeout=timedelta(hours=6)),
    params={
        "model_version": Param(
            "",
            type="string",
            maxLength=200,
            title="Embedder version",
            description="The new version label; empty: from the promotion (asset event or building row).",
        ),
        "chunks_per_task": Param(
            2000,
            type="integer",
            minimum=100,
            maximum=1_000_000,
            title="Chunks per task",
            description="Size of the id ranges mapped over parallel tasks.",
        ),
        "sample_size": Param(
            50,
            type="integer",
            minimum=1,
            maximum=5000,
            title="Gate sample",
            description="Chunks sampled for the self-retrieval gate.",
        ),
        "recall_threshold": Param(
            0.8,
            type="number",
            minimum=0,
            maximum=1,
            title="Recall@10 threshold",
            description="The gate passes when every measured recall@10 is at least this.",
        ),
        "labelled_queries": Param(
            [],
            type="array",
            items={
                "type": "object",
                "properties": {
                    "tenant": {"type": "string"},
                    "query": {"type": "string", "minLength": 1},
                    "document_id": {"type": "string", "format": "uuid"},
                },
                "required": ["tenant", "query", "document_id"],
            },
            title="Labelled queries",
            description="Optional held-out queries: {tenant, query, document_id that must be in the top 10}.",
        ),
        "held_back_labels": Param(
            {},
            type="object",
            title="Held-back labels",
            description=(
                "From finetune_embedder's promotion: {tenant, held_back_fraction, seed, baseline_ndcg_at_10};"
                " the new index must reach that hybrid nDCG@10 on the tenant's held-back labelled queries."
            ),
        ),
    },
)
def reembed_index() -> None:
    @task(multiple_outputs=True)
    def plan(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Pick the new version (param, asset event or promotion's row) and record it as building."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException
        from rag_hooks import RagHook

        from rag.ingestion.reembed import plan_reembed

        assert params is not None
        version = params["model_version"]
        labels = params.get("held_back_labels") or {}
        events = get_current_context().get("triggering_asset_events") or {}
        for asset_events in events.values():
            for event in asset_events:
                extra = event.extra or {}
                if not params["model_version"]:
                    version = extra.get("model_version") or version
                labels = extra.get("labels") or labels
        with RagHook() as hook:
            planned = plan_reembed(hook.pool, hook.triton.embed, model_version=version)
        if planned is None:
            raise AirflowSkipException("no new embedder version to re-embed with")
        return planned.as_dict() | {"labels": labels}

    @task
    def split(source: str, target: str, params: dict[str, Any] | None = None) -> list[list[int]]:
        """Cut the serving version's chunks into id ranges of chunks_per_task."""
        from rag_hooks import RagHook

        from rag.ingestion.reembed import split as run_split

        assert params is not None
        with RagHook() as hook:
            return run_split(hook.pool, source=source, target=target, per_range=params["chunks_per_task"])

    @task(max_active_tis_per_dagrun=2)
    def embed_range(id_range: list[int], source: str, target: str) -> dict[str, float]:
        """Shadow rows for the chunks in one id range (resumes where a retry left off)."""
        from rag_hooks import RagHook

        from rag.ingestion.reembed import embed_range as run_range

        with RagHook() as hook:
            return run_range(
                hook.pool, hook.triton.embed, source=source, target=target, lo=id_range[0], hi=id_range[1]
            )

    @task(trigger_rule="none_failed_min_one_success")
    def evaluate(
        results: list[dict[str, float]] | None,
        source: str,
        target: str,
        labels: dict[str, Any],
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The quality gate; a failure marks the version failed, deletes its rows and says why."""
        from airflow.sdk.exceptions import AirflowFailException
        from rag_hooks import RagHook

        from rag.ingestion.reembed import quality_gate, reject
        from rag.ingestion.reembed_labels import HeldBackLabels

        assert params is not None
        chunks = sum(r["chunks"] for r in results or [])
        seconds = sum(r["seconds"] for r in results or [])
        log.info(
            "embedded %d chunks in %.1f task-seconds (%.1f chunks/s)",
            chunks,
            seconds,
            chunks / seconds if seconds else 0,
        )
        with RagHook() as hook:
            gate = quality_gate(
                hook.pool,
                hook.triton.embed,
                source=source,
                target=target,
                samples=params["sample_size"],
                threshold=params["recall_threshold"],
                labelled=params["labelled_queries"],
                held_back=HeldBackLabels.of(labels),
            )
            gate.quality.update({"embedded_chunks": chunks, "embed_seconds": round(seconds, 3)})
            log.info("%s: %s", gate.reason, gate.quality)
            if not gate.passed:
                reject(hook.pool, source=source, target=target, reason=gate.reason, quality=gate.quality)
                restored = hook.restore_embedder(target)
                raise AirflowFailException(
                    f"{target} not activated, {source} keeps serving: {gate.reason}; {restored}"
                )
        return gate.quality

    @task
    def cut_over(quality: dict[str, Any], source: str, target: str) -> int:
        """New version active, old retired, in one transaction (catching up late chunks first)."""
        from rag_hooks import RagHook

        from rag.ingestion.reembed import cut_over as run_cut_over

        with RagHook() as hook:
            return run_cut_over(hook.pool, hook.triton.embed, source=source, target=target, quality=quality)

    @task(outlets=[INDEX])
    def retire_old(caught_up: int, source: str, target: str) -> dict[str, Any]:
        """Delete the retired version's chunks; refresh BM25 statistics."""
        from rag_hooks import RagHook

        from rag.ingestion.reembed import retire

        with RagHook() as hook:
            return retire(hook.pool, source=source, target=target)

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    planned: Any = plan()
    source, target = planned["source"], planned["target"]
    embedded: Any = embed_range.partial(source=source, target=target).expand(id_range=split(source, target))
    quality: Any = evaluate(embedded, source, target, planned["labels"])
    caught_up: Any = cut_over(quality, source, target)
    retire_old(caught_up, source, target)


reembed_index()
