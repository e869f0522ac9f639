"""Models through Triton vs in-process: embedder throughput and p50 at concurrency 1, 8 and 32;
generator time to first token and ms/token. Prints a table with ratios and writes JSON.

    python -m bench.models                          # against the running stack (.rag/stack.env)
    python -m bench.models --state-dir DIR --start  # start that stack's Triton if it is down
    python -m bench.models --queue-delays 0,1000,2000,4000   # tune the embedder's queue delay

Each client sends one text per request (an interactive query), so Triton's dynamic batcher
does the batching; the in-process rows run the same Embedder from 1, 8 or 32 threads without
a batcher. Targets (issue 4): Triton at concurrency 8 >= 0.9x in-process batch-32 throughput,
Triton single-request p50 <= 1.3x in-process. ``--queue-delays`` rewrites the served embedder's
``max_queue_delay_microseconds`` and reloads it for each value (restoring the original after):
run it on a bench stack, not on one serving users. Single run on shared cores: ratios hold,
absolute numbers are rough.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench.models.embedder import QUEUE_DELAY, EmbedderBench, Load, sweep_queue_delay, triton_pid
from bench.models.generator import in_process_generator, triton_generator
from rag.settings import Settings, load_settings
from rag.stack.secrets import read_env_file

REPO = Path(__file__).resolve().parents[2]


def _settings(state_dir: Path) -> Settings:
    return load_settings(read_env_file(state_dir / "stack.env") | dict(os.environ))


def _ensure_triton(state_dir: Path, start: bool) -> Callable[[], None]:
    """Start the stack's Triton (only Triton) when asked and not running; return how to undo."""
    import httpx

    from rag.stack.config import StackConfig
    from rag.stack.stack import LocalStack

    env = state_dir / "stack.env"
    if env.exists():
        try:
            url = read_env_file(env)["TRITON_HTTP_URL"]
            httpx.get(f"{url}/v2/models/embedder/ready", timeout=2).raise_for_status()
            return lambda: None
        except (httpx.HTTPError, KeyError):
            pass
    if not start:
        raise SystemExit(f"no running Triton for {state_dir}: start the stack (make up) or pass --start")
    config = StackConfig.load(state_dir).model_copy(update={"components": ("triton",)})
    stack = LocalStack(config)
    print(f"starting Triton of the stack in {state_dir} ...", flush=True)
    started = stack.up()
    return (lambda: print(f"stopped: {', '.join(stack.down())}")) if started else (lambda: None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=REPO / ".rag", help="the stack (reads stack.env)")
    parser.add_argument("--start", action="store_true", help="start the stack's Triton when it is down")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measured load and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians are reported)")
    parser.add_argument(
        "--quiet-share", type=float, default=0.15, help="drop rounds where other processes used more CPU"
    )
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--queue-delays", default="", help="microseconds to sweep, e.g. 0,1000,2000")
    parser.add_argument("--tokens", type=int, default=32, help="generated tokens per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-generator", action="store_true")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "models.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    stop = _ensure_triton(args.state_dir, args.start)
    try:
        settings = _settings(args.state_dir)
        report: dict[str, Any] = {  # load average: other processes share these cores
            "machine": {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()},
            "seconds": args.seconds,
            "rounds": args.rounds,
        }
        bench = EmbedderBench(settings.TRITON_GRPC_URL, triton_pid(args.state_dir), args.quiet_share)
        try:
            if args.queue_delays:
                print("embedder queue delay sweep (Triton vs in-process, alternating):", flush=True)
                delays = [int(d) for d in args.queue_delays.split(",")]
                report["queue_delay_sweep"] = sweep_queue_delay(
                    bench, settings, delays, args.seconds, args.rounds
                )
            config = (Path(settings.TRITON_MODEL_REPOSITORY) / "embedder" / "config.pbtxt").read_text()
            delay = QUEUE_DELAY.search(config)
            report["embedder_queue_delay"] = delay.group(0) if delay else "none"
            print("measuring the embedder in-process and through Triton, alternating ...", flush=True)
            found = bench.rounds(levels, args.seconds, args.rounds)
        finally:
            bench.close()
        report["embedder"] = {
            "foreign_cpu_share": found["foreign_cpu_share"],
            "batch32_throughput": found["batch32_throughput"],
            "in_process": [asdict(x) for x in found["in_process"]],
            "triton": [asdict(x) for x in found["triton"]],
        }
        if not args.skip_generator:
            print("measuring the generator in-process and through Triton ...", flush=True)
            report["generator"] = {
                "tokens": args.tokens,
                "in_process": in_process_generator(settings, args.tokens, args.repeats),
                "triton": asyncio.run(triton_generator(settings.TRITON_GRPC_URL, args.tokens, args.repeats)),
            }
        report["machine"]["load_average_after"] = os.getloadavg()
        print_table(report, found["batch32_throughput"], found["in_process"], found["triton"])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2))
        print(f"\nwritten to {args.output}")
    finally:
        stop()
    return 0


def print_table(report: dict[str, Any], batch32: float, local: list[Load], served: list[Load]) -> None:
    delay = report["embedder_queue_delay"]
    print(f"\nembedder all-MiniLM-L6-v2, 30-word texts, one text per request ({delay})")
    print(f"{'':<26}{'in-process':>22}{'Triton':>22}{'Triton/in-process':>20}")
    print(f"{'batch of 32':<26}{batch32:>15.0f} text/s{'':>22}{'':>20}")
    for mine, theirs in zip(local, served, strict=True):
        label = f"concurrency {mine.concurrency}"
        print(
            f"{label + ' throughput':<26}{mine.throughput:>15.0f} text/s{theirs.throughput:>15.0f} text/s"
            f"{theirs.throughput / mine.throughput:>19.2f}x"
        )
        print(
            f"{label + ' p50':<26}{mine.p50_ms:>18.1f} ms{theirs.p50_ms:>18.1f} ms"
            f"{theirs.p50_ms / mine.p50_ms:>19.2f}x   (Triton mean batch {theirs.mean_batch or 0:.1f})"
        )
    by_level = {load.concurrency: load for load in served}
    local_by_level = {load.concurrency: load for load in local}
    if 8 in by_level:
        ratio = by_level[8].throughput / batch32
        print(f"target: Triton c=8 throughput / in-process batch-32 = {ratio:.2f} (>= 0.9)")
    if 1 in by_level and 1 in local_by_level:
        ratio = by_level[1].p50_ms / local_by_level[1].p50_ms
        print(f"target: Triton c=1 p50 / in-process p50 = {ratio:.2f} (<= 1.3)")
    generator = report.get("generator")
    if generator:
        mine, theirs = generator["in_process"], generator["triton"]
        steps = mine["steps"] or generator["tokens"]
        same = "same text" if mine["text"] == theirs["text"] else "TEXT DIFFERS"
        print(f"\ngenerator SmolLM2-135M-Instruct (bfloat16), {steps} tokens, greedy ({same})")
        per_mine = (mine["total_ms"] - mine["ttft_ms"]) / max(steps - 1, 1)
        per_theirs = (theirs["total_ms"] - theirs["ttft_ms"]) / max(steps - 1, 1)
        print(
            f"{'time to first token':<26}{mine['ttft_ms']:>18.0f} ms{theirs['ttft_ms']:>18.0f} ms"
            f"{theirs['ttft_ms'] / mine['ttft_ms']:>19.2f}x"
        )
        print(
            f"{'decode':<26}{per_mine:>12.1f} ms/token{per_theirs:>12.1f} ms/token"
            f"{per_theirs / per_mine:>19.2f}x"
        )
        generator["ms_per_token"] = {"in_process": per_mine, "triton": per_theirs}


if __name__ == "__main__":
    sys.exit(main())
