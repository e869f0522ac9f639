"""The stack's Triton serves the three models as their runtimes compute them in-process:
embedder batches, dynamic batching, a reranker trained here and promoted through MLflow, and
the generator's streams (MAX_TOKENS, STOP, cancellation)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.adapters.triton import FloatArray, TritonClient, TritonOptions
from rag.core.ports import Priority
from rag.modelops.lifecycle import ModelLifecycle
from rag.modelops.packaging import ModelKind
from rag.models.embedding import Embedder
from rag.models.generation import Generator
from rag.settings import Settings

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures.models"]  # lifecycle, trained_cross_encoder, ranking_cases

PROMPT = "List three colors of the rainbow."


def _client(settings: Settings) -> TritonClient:
    return TritonClient(TritonOptions(settings.TRITON_GRPC_URL, timeout_s=60.0))


def _counts(stats: dict[str, Any]) -> tuple[int, int]:
    """(inference_count, execution_count) summed over the model's versions."""
    entries = stats.get("model_stats", [])
    return (
        sum(int(e.get("inference_count", 0)) for e in entries),
        sum(int(e.get("execution_count", 0)) for e in entries),
    )


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def smollm(settings: Settings) -> Generator:
    """SmolLM2 in-process, as Triton's generator loads it (bfloat16, the shared GGUF cache)."""
    return Generator(cache_dir=settings.HF_CACHE_DIR / "gguf")


def test_embedder_serves_a_32_row_batch_in_one_execution(settings: Settings, embedder: Embedder) -> None:
    texts = [
        f"Trial {i}: aspirin lowered the risk of a first heart attack by {i} percent." for i in range(32)
    ]

    async def run() -> tuple[FloatArray, dict[str, Any], dict[str, Any]]:
        async with _client(settings) as client:
            before = await client.statistics("embedder")
            vectors = await client.embed(texts, priority=Priority.BATCH)
            return vectors, before, await client.statistics("embedder")

    vectors, before, after = asyncio.run(run())

    assert vectors.shape == (32, 384)
    cosine = np.sum(vectors * embedder.encode(texts), axis=1)
    assert float(cosine.min()) >= 0.9999
    (inferences, executions), (inferences0, executions0) = _counts(after), _counts(before)
    assert (inferences - inferences0, executions - executions0) == (32, 1)


def test_concurrent_single_text_requests_are_batched(settings: Settings) -> None:
    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        async with _client(settings) as client:
            before = await client.statistics("embedder")
            await asyncio.gather(*(client.embed([f"query number {i}"]) for i in range(48)))
            return before, await client.statistics("embedder")

    before, after = asyncio.run(run())

    inferences = _counts(after)[0] - _counts(before)[0]
    executions = _counts(after)[1] - _counts(before)[1]
    assert inferences == 48
    assert inferences / executions > 1, f"48 requests took {executions} executions: no batching"


def test_trained_reranker_promoted_through_mlflow_ranks_like_in_process(
    settings: Settings,
    lifecycle: ModelLifecycle,
    trained_cross_encoder: Path,
    ranking_cases: list[tuple[str, str, list[str]]],
) -> None:
    from sentence_transformers import CrossEncoder

    version = lifecycle.register(ModelKind.RERANKER, trained_cross_encoder, name="tiny-trained-ce")
    deployment = lifecycle.promote(ModelKind.RERANKER, version.version)
    assert (deployment.status, deployment.mlflow_version) == ("serving", version.version)
    in_process = CrossEncoder(str(trained_cross_encoder), device="cpu", local_files_only=True)

    async def run() -> list[FloatArray]:
        async with _client(settings) as client:
            # The relevant passage goes last, so ranking it first is no accident of order.
            return [await client.rerank(q, [*others, relevant]) for q, relevant, others in ranking_cases]

    for served, (query, relevant, others) in zip(asyncio.run(run()), ranking_cases, strict=True):
        expected = in_process.predict([(query, p) for p in [*others, relevant]], show_progress_bar=False)
        np.testing.assert_allclose(served, expected, atol=1e-5)
        assert int(np.argmax(served)) == len(others), (query, served)


async def _generate(settings: Settings, prompt: str, **options: Any) -> list[str]:
    async with _client(settings) as client:
        return [piece async for piece in client.generate(prompt, **options)]


def test_generator_streams_tokens_and_stops_at_max_tokens(settings: Settings, smollm: Generator) -> None:
    steps = 0

    def count() -> bool:
        nonlocal steps
        steps += 1
        return False

    expected = "".join(smollm.stream(PROMPT, 8, is_cancelled=count))
    assert steps == 8  # the budget ended it, not the end-of-sequence token

    pieces = asyncio.run(_generate(settings, PROMPT, max_tokens=8))

    assert len(pieces) > 1  # streamed piece by piece, not one final blob
    assert "".join(pieces) == expected


def test_generator_stops_at_a_stop_sequence(settings: Settings, smollm: Generator) -> None:
    full = smollm.generate(PROMPT, 16)
    cut = next(k for k in range(4, len(full) - 3) if full.find(full[k : k + 3]) == k and full[k] != " ")
    stop = full[cut : cut + 3]

    text = "".join(asyncio.run(_generate(settings, PROMPT, max_tokens=16, stop=[stop])))

    assert text == full[:cut], (stop, full)


def test_generator_cancellation_frees_the_model_for_the_next_request(settings: Settings) -> None:
    async def run() -> tuple[list[str], list[str], float]:
        async with _client(settings) as client:
            stream = client.generate("Write a very long story about a dragon.", max_tokens=2000)
            first: list[str] = []
            async for piece in stream:
                first.append(piece)
                if len(first) == 2:
                    break
            await stream.aclose()
            began = time.monotonic()
            after = [piece async for piece in client.generate("Say hello.", max_tokens=3)]
            return first, after, time.monotonic() - began

    first, after, elapsed = asyncio.run(run())

    assert len(first) == 2
    assert after
    # One generator instance: had the 2000-token stream gone on (over a minute at ~35 ms a
    # token), the next request would have waited for it.
    assert elapsed < 20.0
