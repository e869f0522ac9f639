"""In-process model numbers: the floor the Triton path is compared against.

Prints embedder load time, single-text latency and batch-32 throughput, and generator
load times (GGUF parse, first conversion, cached load), time to first token and ms/token
per dtype. Single quiet run; shared cores make absolute numbers rough, ratios hold.

    HF_HUB_OFFLINE=1 python bench/models/inprocess.py [--skip-generator] [--tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SENTENCE = (
    "retrieval augmented generation grounds answers in documents that a vector index returns "
    "for each query while a reranker orders passages and citations point back to the sources"
)
WORDS = SENTENCE.split(" ")


def texts(n: int, words: int = 30) -> list[str]:
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(words)) for i in range(n)]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_embedder() -> list[tuple[str, str]]:
    from rag.models.embedding import Embedder

    start = time.perf_counter()
    embedder = Embedder()
    load_s = time.perf_counter() - start
    one = texts(1)
    embedder.encode(one)
    single = [timed(lambda: embedder.encode(one)) * 1000 for _ in range(30)]
    batch = texts(32)
    embedder.encode(batch)
    rounds = 10
    total = sum(timed(lambda: embedder.encode(batch)) for _ in range(rounds))
    return [
        ("embedder load (MiniLM)", f"{load_s:.2f} s"),
        ("embedder 1 text p50 (30 words)", f"{statistics.median(single):.1f} ms"),
        ("embedder batch 32 throughput", f"{32 * rounds / total:.0f} texts/s"),
    ]


def bench_generator(tokens: int) -> list[tuple[str, str]]:
    from rag.models.generation import Generator

    rows: list[tuple[str, str]] = []
    start = time.perf_counter()
    Generator(dtype="float32")
    rows.append(("generator load, GGUF parsed directly", f"{time.perf_counter() - start:.1f} s"))
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        Generator(dtype="float32", cache_dir=cache)
        rows.append(("generator load, first GGUF conversion", f"{time.perf_counter() - start:.1f} s"))
        for dtype in ("float32", "bfloat16"):
            start = time.perf_counter()
            generator = Generator(dtype=dtype, cache_dir=cache)
            rows.append((f"generator load, converted ({dtype})", f"{time.perf_counter() - start:.2f} s"))
            rows.extend(_decode_speed(generator, tokens, dtype))
        size = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
        rows.append(("converted cache size", f"{size / 2**20:.0f} MiB"))
    return rows


def _decode_speed(generator: object, tokens: int, dtype: str) -> list[tuple[str, str]]:
    from rag.models.generation import Generator

    assert isinstance(generator, Generator)
    prompt = "Write a long story about a dragon who learns to read."
    generator.generate(prompt, 4)  # warm-up
    steps = 0

    def count() -> bool:
        nonlocal steps
        steps += 1
        return False

    start = time.perf_counter()
    first: float | None = None
    for _ in generator.stream(prompt, tokens, is_cancelled=count):
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    assert first is not None
    per_token = (total - first) / max(steps - 1, 1) * 1000
    return [
        (f"generator time to first token ({dtype})", f"{first * 1000:.0f} ms"),
        (f"generator decode ({dtype}, {steps} tokens)", f"{per_token:.1f} ms/token"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-generator", action="store_true")
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    rows = bench_embedder()
    if not args.skip_generator:
        rows += bench_generator(args.tokens)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
