"""Generator streams for ``python -m bench.models``: time to first token and total time, in
process and through Triton's decoupled model."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from rag.adapters.triton import TritonClient, TritonOptions
from rag.settings import Settings

PROMPT = "Write a short story about a dragon who learns to read."


def in_process_generator(settings: Settings, tokens: int, repeats: int) -> dict[str, Any]:
    from rag.models.generation import Generator

    generator = Generator(cache_dir=settings.HF_CACHE_DIR / "gguf")
    generator.generate(PROMPT, 4)  # warm-up
    runs = []
    for _ in range(repeats):
        steps = 0

        def count() -> bool:
            nonlocal steps
            steps += 1
            return False

        runs.append(_timed_stream(lambda: generator.stream(PROMPT, tokens, is_cancelled=count)))
        runs[-1]["steps"] = steps
    return _generation_summary(runs)


def _timed_stream(stream: Callable[[], Any]) -> dict[str, Any]:
    began = time.perf_counter()
    first: float | None = None
    pieces = []
    for piece in stream():
        first = first if first is not None else time.perf_counter() - began
        pieces.append(piece)
    return {"ttft": first or 0.0, "total": time.perf_counter() - began, "text": "".join(pieces)}


async def triton_generator(url: str, tokens: int, repeats: int) -> dict[str, Any]:
    runs = []
    async with TritonClient(TritonOptions(url, timeout_s=120.0)) as client:
        [_ async for _ in client.generate(PROMPT, max_tokens=4)]  # warm-up
        for _ in range(repeats):
            began = time.perf_counter()
            first: float | None = None
            pieces = []
            async for piece in client.generate(PROMPT, max_tokens=tokens):
                first = first if first is not None else time.perf_counter() - began
                pieces.append(piece)
            runs.append({"ttft": first or 0.0, "total": time.perf_counter() - began, "text": "".join(pieces)})
    return _generation_summary(runs)


def _generation_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ttft_ms": statistics.median(r["ttft"] for r in runs) * 1000,
        "total_ms": statistics.median(r["total"] for r in runs) * 1000,
        "steps": runs[0].get("steps"),
        "text": runs[0]["text"],
    }
