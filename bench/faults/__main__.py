"""``python -m bench.faults``: the fault matrix (issue 13, item 6). It KILLS stack components:
run it against a stack of your own (``--state-dir``), never one that others use.

For each component cell (postgres, redis, objectstore, triton, mlflow, airflow-scheduler,
airflow-task, api), with three loads at once: (a) one ``ingest_documents`` run over
``--documents`` SciFact abstracts, (b) 8 closed-loop searchers, (c) an upload stream, the
component is killed with SIGKILL ``--kill-after`` s after the run starts, and ``--recover-after``
s later recovered by ``LocalStack.up()`` (what ``make up`` runs), with no other step. Per cell:
documents lost, duplicated chunk rows, documents left non-terminal and the time until all are
terminal, runs that reported success with an unfinished document, RPC status codes during the
outage and after recovery, and the time until every component is healthy and the API SERVING.
The graceful row (``--no-graceful`` skips it) sends SIGTERM to each component under loads (b)
and (c). Done when every cell meets every point (see ``CellResult.verdicts``).

    python -m bench.faults --state-dir /tmp/faults-stack --start
    python -m bench.faults --state-dir /tmp/faults-stack --components triton --documents 30 --no-graceful
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from bench import report
from bench.faults.cell import SWEEPER_PERIOD_S, CellResult, errors_only, run_cell
from bench.faults.corpus import scifact
from bench.faults.graceful import GracefulResult, graceful_cell
from bench.faults.inject import CELLS, GRACEFUL
from bench.target import Target, connect, stack_parser

T = TypeVar("T")


def _say(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def _names(text: str, allowed: tuple[str, ...], parser: argparse.ArgumentParser, flag: str) -> list[str]:
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        parser.error(f"{flag}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def _healthy(target: Target) -> None:
    """Start the next cell on a healthy stack (``up()`` if the last one left it otherwise)."""
    bad = [row.name for row in target.stack.status() if not row.healthy]
    if bad:
        _say(f"unhealthy before the next cell ({', '.join(bad)}): up()")
        target.stack.up()


def cell_table(result: CellResult) -> str:
    verdicts = result.verdicts()
    rows: list[list[Any]] = [
        ["killed", f"{result.signal} pid {result.kill['pid']} at {result.kill['after_s']} s", "-"],
        [
            "documents lost",
            f"{result.lost} (of {result.documents} files + {result.uploads_acknowledged} uploads)",
            report.verdict(verdicts["0 lost"]),
        ],
        [
            "duplicated chunk rows",
            f"{result.duplicated_chunks} (of {result.chunks})",
            report.verdict(verdicts["0 duplicated"]),
        ],
        ["non-terminal at the end", _non_terminal(result), report.verdict(verdicts["0 non-terminal"])],
        ["recovery -> all terminal, s", _num(result.terminal_after_recovery_s), "-"],
        [
            "sweeper triggered at, s after recovery",
            ", ".join(map(str, result.sweeper_triggered_at_s)) or "no",
            "-",
        ],
        ["runs by final state", _dict(result.runs), "-"],
        [
            "runs green with unfinished",
            len(result.green_with_unfinished),
            report.verdict(verdicts["0 green runs with unfinished"]),
        ],
        ["RPC errors during outage", _per_method(result, "outage"), "-"],
        [
            "RPC errors after recovery",
            _per_method(result, "after"),
            report.verdict(verdicts["0 INTERNAL/UNKNOWN after recovery"]),
        ],
        [
            "RPCs OK before/outage/after",
            "/".join(str(result.calls[p].get("OK", 0)) for p in ("before", "outage", "after")),
            "-",
        ],
        [
            "up(): s, restarted",
            f"{result.up_s:.1f} s, {', '.join(result.restarted) or 'none'}"
            + (f"; errors: {'; '.join(result.up_errors)}" if result.up_errors else ""),
            "-",
        ],
        ["recovery -> all healthy + SERVING, s", _num(result.recovery_s), "-"],
        [
            "component back -> API SERVING, s",
            _num(result.serving_after_return_s),
            report.verdict(next(v for k, v in verdicts.items() if k.startswith("SERVING"))),
        ],
    ]
    title = f"bench.faults cell {result.cell} (tenant {result.tenant}); {result.load}"
    messages = "".join(f"\n  {key}: {text}" for key, text in sorted(result.messages.items()))
    return report.table(title, ["measure", "value", "verdict"], rows) + (
        f"\nfirst message per error:{messages}" if messages else ""
    )


def _per_method(result: CellResult, phase: str) -> str:
    parts = [
        f"{method}: {_dict(errors_only(_counter(phases[phase])))}"
        for method, phases in result.calls_by_method.items()
        if errors_only(_counter(phases[phase]))
    ]
    return "; ".join(parts) or "none"


def graceful_table(results: list[GracefulResult]) -> str:
    rows = []
    for r in results:
        v = r.verdicts()
        rows.append(
            [
                r.component,
                _dict(errors_only(_counter(r.calls["outage"]))),
                report.verdict(v["nothing worse than UNAVAILABLE"]),
                " ".join(f"{x['method']}:{'+'.join(x['codes'])}" for x in r.retries),
                report.verdict(v["client retry succeeds"]),
                f"{len(r.uploads_lost)}/{r.uploads_acknowledged}",
                _num(r.recovery_s),
            ]
        )
    title = f"bench.faults graceful row (SIGTERM, searches + uploads); {report.load_now()}"
    header = [
        "component",
        "errors during outage",
        "<= UNAVAILABLE",
        "client retry",
        "retry ok",
        "lost/acked",
        "healthy after s",
    ]
    return report.table(title, header, rows)


def summary_table(results: list[CellResult]) -> str:
    rows = []
    for r in results:
        v = r.verdicts()
        rows.append(
            [
                r.cell,
                r.lost,
                r.duplicated_chunks,
                r.non_terminal,
                _num(r.terminal_after_recovery_s),
                len(r.green_with_unfinished),
                r.internal_after,
                _num(r.recovery_s),
                _num(r.serving_after_return_s),
                "met" if all(v.values()) else "NOT met: " + ", ".join(k for k, ok in v.items() if not ok),
            ]
        )
    header = [
        "cell",
        "lost",
        "dup",
        "non-term",
        "terminal s",
        "green+unfin",
        "INTERNAL after",
        "healthy s",
        "SERVING s",
        "verdict",
    ]
    return report.table(f"bench.faults: every cell; {report.load_now()}", header, rows)


def _counter(codes: dict[str, int]) -> Counter[str]:
    return Counter(codes)


def _non_terminal(result: CellResult) -> str:
    """How many, by status, and when the last claim or deadline among the first 20 runs out."""
    if not result.non_terminal:
        return "0"
    detail = result.non_terminal_detail
    by_status = Counter(status for _, status, _, _ in detail)
    left = [s for *_, s in detail if s is not None]
    until = f"; claims/deadlines run out in <= {max(left):.0f} s" if left else ""
    return f"{result.non_terminal} ({_dict(dict(by_status))} among the first {len(detail)}{until})"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _dict(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in values.items()) or "none"


def _recorded(failures: dict[str, str], name: str, run: Callable[[], T]) -> T | None:
    """``run()``; if it fails, None, with the error printed and kept under ``name`` (the other
    cells still run)."""
    try:
        return run()
    except Exception as exc:
        traceback.print_exc()
        failures[name] = f"{type(exc).__name__}: {exc}"
        return None


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.faults", __doc__)
    parser.add_argument("--components", default=",".join(CELLS), help="comma-separated cells (default: all)")
    parser.add_argument(
        "--documents", type=int, default=300, help="files for the ingest run (default %(default)s)"
    )
    parser.add_argument(
        "--kill-after", type=float, default=12.0, help="seconds from the run's trigger to the kill"
    )
    parser.add_argument("--recover-after", type=float, default=15.0, help="seconds from the kill to up()")
    parser.add_argument("--no-graceful", action="store_true", help="skip the graceful (SIGTERM) row")
    parser.add_argument("--graceful", default=",".join(GRACEFUL), help="components of the graceful row")
    parser.add_argument(
        "--settle",
        type=float,
        default=2 * SWEEPER_PERIOD_S,
        help="seconds after recovery to wait for terminal documents (default: two sweeper periods)",
    )
    parser.add_argument(
        "--upload-interval", type=float, default=2.0, help="seconds between uploads (each triggers a run)"
    )
    parser.add_argument("--searchers", type=int, default=8)
    parser.add_argument(
        "--load-after", type=float, default=20.0, help="seconds the loads go on after recovery"
    )
    parser.add_argument("--data", type=Path, default=None, help="BEIR folder (default: SciFact)")
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    cells = _names(args.components, CELLS, parser, "--components")
    graceful = [] if args.no_graceful else _names(args.graceful, GRACEFUL, parser, "--graceful")
    target = connect(args.state_dir, start=args.start, need=tuple(target_names()))
    _say(f"stack {target.stack.config.state_dir}, API {target.grpc_address}; {report.load_now()}")
    results: list[CellResult] = []
    failures: dict[str, str] = {}
    for cell in cells:
        _healthy(target)
        result = _recorded(
            failures,
            cell,
            functools.partial(
                run_cell,
                target,
                cell,
                documents=args.documents,
                kill_after_s=args.kill_after,
                recover_after_s=args.recover_after,
                data=args.data,
                searchers=args.searchers,
                upload_interval_s=args.upload_interval,
                load_after_s=args.load_after,
                settle_s=args.settle,
                progress=_say,
            ),
        )
        if result is None:
            continue
        results.append(result)
        print(cell_table(result), flush=True)
        save(args, results, [], failures, met=None)
    graceful_results: list[GracefulResult] = []
    corpus = scifact(0, nonce="graceful", data=args.data)
    for component in graceful:
        _healthy(target)
        graceful_result = _recorded(
            failures,
            f"graceful {component}",
            functools.partial(
                graceful_cell,
                target,
                component,
                corpus=corpus,
                recover_after_s=args.recover_after,
                searchers=args.searchers,
                upload_interval_s=args.upload_interval,
                signal=signal.SIGTERM,
                progress=_say,
            ),
        )
        if graceful_result is not None:
            graceful_results.append(graceful_result)
        save(args, results, graceful_results, failures, met=None)
    if results:
        print(summary_table(results))
    if graceful_results:
        print(graceful_table(graceful_results))
    for name, error in failures.items():
        print(f"{name}: the cell did not complete: {error}")
    met = (
        not failures
        and all(all(r.verdicts().values()) for r in results)
        and all(all(g.verdicts().values()) for g in graceful_results)
    )
    print(f"bench.faults: {'every point met' if met else 'NOT every point met'}")
    path = save(args, results, graceful_results, failures, met=met)
    print(f"wrote {path}")
    return 0 if met else 1


def save(
    args: argparse.Namespace,
    results: list[CellResult],
    graceful: list[GracefulResult],
    failures: dict[str, str],
    *,
    met: bool | None,
) -> Path:
    """bench/results/faults.json; written after each cell too (``met`` None: still running)."""
    return report.save(
        "faults",
        {
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "cells": [asdict(r) | {"verdicts": r.verdicts()} for r in results],
            "graceful": [asdict(r) | {"verdicts": r.verdicts()} for r in graceful],
            "failures": failures,
            "complete": met is not None,
            "met": met,
        },
        args.results,
    )


def target_names() -> list[str]:
    """Every component must be healthy before the matrix starts."""
    from rag.stack.components import ALL

    return list(ALL)


if __name__ == "__main__":
    sys.exit(main())
