"""Generation: time to first token and ms/token through gRPC GenerateStream vs Triton directly.

Each question goes once through ``GenerateStream`` (retrieve, build the prompt, stream tokens
from the Triton generator, citations) and once straight to the Triton generator
(``TritonClient.generate``) with the very prompt the service built from the same hits. The
difference in time to first token is retrieval, prompt building and the API's overhead; the
ms/token should match (the same model streams the tokens).

    python -m bench.generation [--questions 5] [--max-tokens 32]
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

from bench import report
from bench.latency import case_variant
from bench.quality import ingested_target
from bench.target import stack_parser
from rag.adapters.triton import TritonClient, TritonOptions
from rag.core.ports import Priority
from rag.core.prompts import Source, build_prompt

STOP = ("\nQuestion:",)


def stream_timings(token_times: list[float], began: float) -> tuple[float | None, float | None, int]:
    """(time to first token ms, ms per token after the first, tokens)."""
    if not token_times:
        return None, None, 0
    ttft = (token_times[0] - began) * 1000
    per_token = (
        (token_times[-1] - token_times[0]) * 1000 / (len(token_times) - 1) if len(token_times) > 1 else None
    )
    return ttft, per_token, len(token_times)


async def direct(url: str, prompt: str, max_tokens: int) -> tuple[float | None, float | None, int]:
    async with TritonClient(TritonOptions(url, timeout_s=300.0)) as triton:
        began = time.perf_counter()
        times = []
        async for _ in triton.generate(
            prompt, max_tokens=max_tokens, temperature=0.0, stop=STOP, priority=Priority.GENERATION
        ):
            times.append(time.perf_counter())
    return stream_timings(times, began)


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.generation", __doc__, data_help="BEIR folder: corpus and questions")
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    dataset, target, tenant = ingested_target(args)
    rng = random.Random(time.time_ns())
    questions = [case_variant(q, rng) for q in list(dataset.queries.values())[: args.questions]]
    samples: list[dict[str, float | int | None]] = []
    with target.client(tenant, timeout_s=300.0) as client:
        for question in questions:
            began = time.perf_counter()
            times = []
            for event in client.ask(question, top_k=args.top_k, max_tokens=args.max_tokens):
                if event.WhichOneof("event") == "token":
                    times.append(time.perf_counter())
            api_ttft, api_tok, api_n = stream_timings(times, began)
            # The prompt the service built from the same hits (now cached). The API does not
            # return the vector similarity the service filters on (>= MIN_SIMILARITY), so every
            # hit is kept: on SciFact questions nearly all pass that filter.
            hits = client.search(question, top_k=args.top_k, mode="hybrid").results
            sources = [
                Source(n, h.chunk_id, h.document_id, h.document_title, h.page if h.page else None, h.text)
                for n, h in enumerate(hits, start=1)
            ]
            if not sources:
                continue
            prompt = build_prompt(question, sources)
            raw_ttft, raw_tok, raw_n = asyncio.run(
                direct(target.settings.TRITON_GRPC_URL, prompt, args.max_tokens)
            )
            samples.append(
                {
                    "api_ttft_ms": api_ttft,
                    "api_ms_per_token": api_tok,
                    "api_tokens": api_n,
                    "triton_ttft_ms": raw_ttft,
                    "triton_ms_per_token": raw_tok,
                    "triton_tokens": raw_n,
                }
            )

    def med(key: str) -> float | None:
        values = [float(v) for s in samples if (v := s[key]) is not None]
        return statistics.median(values) if values else None

    api_ttft, raw_ttft = med("api_ttft_ms"), med("triton_ttft_ms")
    api_tok, raw_tok = med("api_ms_per_token"), med("triton_ms_per_token")
    rows = [
        [
            "gRPC GenerateStream",
            api_ttft,
            api_tok,
            report.ratio(api_ttft, raw_ttft),
            report.ratio(api_tok, raw_tok),
        ],
        ["Triton generate (floor)", raw_ttft, raw_tok, "1.00x", "1.00x"],
    ]
    pairs_ttft = [
        float(s["api_ttft_ms"]) / float(s["triton_ttft_ms"])
        for s in samples
        if s["api_ttft_ms"] and s["triton_ttft_ms"]
    ]
    pairs_tok = [
        float(s["api_ms_per_token"]) / float(s["triton_ms_per_token"])
        for s in samples
        if s["api_ms_per_token"] and s["triton_ms_per_token"]
    ]
    title = (
        f"Generation: {len(samples)} questions, top_k {args.top_k}, up to {args.max_tokens} tokens, greedy;"
        f" medians; {report.load_now()}"
    )
    print(report.table(title, ["path", "TTFT ms", "ms/token", "TTFT vs floor", "ms/token vs floor"], rows))
    if pairs_ttft and pairs_tok:
        print(
            f"median of per-question ratios: TTFT {statistics.median(pairs_ttft):.2f}x,"
            f" ms/token {statistics.median(pairs_tok):.2f}x (each question runs both paths back to back;"
            " shared cores make single samples swing several-fold)"
        )
    path = report.save(
        "generation",
        {
            "questions": len(samples),
            "top_k": args.top_k,
            "max_tokens": args.max_tokens,
            "median": {
                "api_ttft_ms": api_ttft,
                "api_ms_per_token": api_tok,
                "triton_ttft_ms": raw_ttft,
                "triton_ms_per_token": raw_tok,
            },
            "samples": samples,
        },
        args.results,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
