"""Hostile input against the running stack: the poison corpus, then every RPC fuzzed.

1. Four control documents (text, HTML, PDF, DOCX) are uploaded to a fresh tenant and indexed;
   from then on a client searches them every 100 ms, and from the start another checks gRPC
   health every 100 ms.
2. The poison corpus (``bench.adversarial.poison``, written to a temporary folder) is uploaded
   through DocumentService.Upload, one document at a time by default: each is followed with
   GetDocument until INDEXED or QUARANTINED (ingestion is the real path: the Airflow run the
   upload triggers, or the sweeper), so the parser workers' RSS, read from /proc every 100 ms,
   belongs to that kind. A last control follows the poison.
3. ``bench.adversarial.fuzz`` drives every RPC with generated requests (10,000 by default), as an
   admin of another fresh tenant, a new user every batch below the rate-limit burst.

It prints per kind the outcome (rejected with its status and message, or quarantined with its
reason) and the peak worker RSS; health p50/p99/max; search p99; fuzz counts by status code; the
documents left non-terminal. It writes bench/results/adversarial.json and exits non-zero when a
check fails: a kind neither rejected nor quarantined with a reason, a control not indexed, a
document left non-terminal, health max >= 250 ms or p99 >= 100 ms or ever not SERVING, a parser
worker over 1 GiB (or none seen), any INTERNAL or UNKNOWN in the fuzz.

    python -m bench.adversarial [--kinds html-regex-bomb,pdf-10000-pages] [--fuzz-examples 10000]
    python -m bench.adversarial --list

The module is a little over 400 lines because it is one run from start to verdict: the
corpus and the fuzz live in their own modules, and what stays here is the order of the steps,
the checks and the report that names each failed one.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from bench import report
from bench.adversarial import poison
from bench.adversarial.harness import Outcome, Upload, outcome, refused_table_rows, upload, wait_terminal
from bench.adversarial.probes import (
    HealthProbe,
    PeakRss,
    SearchLoad,
    Window,
    WorkerSampler,
    attribute,
    overall_peak,
)
from bench.target import Target, connect, stack_parser
from rag.adapters.tokens import JwtTokens
from rag.client import RagClient
from rag.core.auth import Principal, Role
from rag.parsing.isolation import TITLE as PARSER_TITLE  # "rag-parser: <document id>"
from rag.proto.rag.v1 import document_pb2

MIB = 2**20
HEALTH_MAX_MS = 250.0
HEALTH_P99_MS = 100.0
WORKER_RSS_LIMIT = 2**30


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not run
    detail: str


class Run:
    """One benchmark run: uploads, the processing windows, the last state of every document."""

    def __init__(self, client: RagClient, *, parallel: int, kind_timeout_s: float, deadline: float) -> None:
        self.client = client
        self.parallel = parallel
        self.kind_timeout_s = kind_timeout_s
        self.deadline = deadline
        self.uploads: list[Upload] = []
        self.windows: dict[str, Window] = {}
        self.documents: dict[str, document_pb2.Document] = {}
        self.marks: list[tuple[float, str]] = []  # (epoch seconds, what started then)

    def _seen_terminal(self, document: document_pb2.Document) -> None:
        window = self.windows.get(document.id)
        if window is not None and window.end is None:
            window.end = time.monotonic()

    def _one(self, sample: poison.Sample, *, wait: bool) -> Upload:
        self.marks.append((time.time(), sample.kind.name))
        result = upload(self.client, sample)
        print(f"  {sample.kind.name}: {_uploaded(result)}", flush=True)
        if result.document_id is not None:
            self.windows.setdefault(result.document_id, Window(result.document_id, result.started))
            if wait:
                self.wait([result.document_id], min(self.deadline, time.monotonic() + self.kind_timeout_s))
                print(f"    -> {outcome(result, self.documents).summary[:120]}", flush=True)
        return result

    def send(self, samples: Sequence[poison.Sample], *, together: bool = False) -> list[Upload]:
        """Upload ``samples``: one at a time, each followed to its end (``parallel`` 1), or
        ``parallel`` at a time; ``together``: all of them, then wait for them all."""
        if self.parallel == 1 and not together:
            sent = [self._one(sample, wait=True) for sample in samples]
        else:
            with ThreadPoolExecutor(self.parallel, thread_name_prefix="upload") as pool:
                sent = list(pool.map(lambda sample: self._one(sample, wait=False), samples))
        self.uploads += sent
        if together:
            self.wait(
                [u.document_id for u in sent if u.document_id is not None],
                min(self.deadline, time.monotonic() + self.kind_timeout_s),
            )
        return sent

    def wait(self, document_ids: Sequence[str], deadline: float | None = None) -> None:
        found = wait_terminal(
            self.client, document_ids, deadline=deadline or self.deadline, on_terminal=self._seen_terminal
        )
        self.documents.update(found)

    def finish(self) -> None:
        """Wait for every document still in progress, until the deadline."""
        self.wait([u.document_id for u in self.uploads if u.document_id is not None])


def _uploaded(result: Upload) -> str:
    if result.document_id is None:
        return f"rejected {result.code}: {' '.join(result.details.split())[:100]}"
    run = f"ingestion run {result.run_id}" if result.run_id else "no ingestion run: left to the sweeper"
    return f"accepted as {result.document_id}, {run}" + (" (deduplicated)" if result.deduplicated else "")


def run_fuzz(target: Target, examples: int) -> dict[str, Any]:
    """``examples`` fuzzed requests, in batches below the rate-limit burst, each batch sent by a new
    admin user (a new rate-limit bucket) of one fresh tenant."""
    from bench.adversarial import fuzz

    tenant = f"bench-fuzz-{uuid.uuid4().hex[:8]}"
    tokens = JwtTokens.from_settings(target.settings)
    batch = max(1, target.settings.RATE_LIMIT_BURST - 10)  # health checks are not rate limited
    codes: Counter[str] = Counter()
    health: Counter[str] = Counter()
    failures: list[dict[str, str]] = []
    sent = 0
    with grpc.insecure_channel(target.grpc_address) as channel:
        for n, start in enumerate(range(0, examples, batch)):
            principal = Principal.of(f"fuzz-{tenant}-{n}", tenant, Role.ADMIN)
            auth = [("authorization", f"Bearer {tokens.issue_access(principal).token}")]
            result = fuzz.fuzz(channel, min(batch, examples - start), metadata=auth, seed_value=fuzz.SEED + n)
            sent += result.examples
            codes.update(result.codes)
            health.update(result.health)
            failures += [asdict(f) for f in result.failures]
    return {
        "tenant": tenant,
        "examples": sent,
        "codes": dict(codes),
        "health": dict(health),
        "failures": failures,
    }


def delete_all(client: RagClient, *, attempts: int = 20) -> int:
    """Delete every document of the client's tenant, waiting out the API's rate limit."""
    ids = [d.id for d in client.documents(page_size=200)]
    for document_id in ids:
        for attempt in range(attempts):
            try:
                client.delete(document_id)
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt == attempts - 1:
                    raise
                time.sleep(0.25 * (attempt + 1))
    return len(ids)


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.adversarial", __doc__)
    parser.add_argument("--kinds", default="", help="comma-separated kinds (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the kinds and exit")
    parser.add_argument("--fuzz-examples", type=int, default=10_000, help="fuzzed requests; 0 skips the fuzz")
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="uploads in flight; above 1 the peak RSS is per kind only if workers name the document",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for the whole corpus")
    parser.add_argument("--kind-timeout", type=float, default=600.0, help="seconds to wait for one document")
    parser.add_argument(
        "--worker-pattern",
        default=rf"^{re.escape(PARSER_TITLE)}:",
        help="regex for the parser workers' command lines (default: their process title)",
    )
    parser.add_argument("--health-service", default="", help='gRPC health service ("": the whole server)')
    parser.add_argument("--keep", action="store_true", help="keep the run's documents (default: delete)")
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    if args.list:
        for kind in poison.KINDS:
            print(f"{kind.name:26s} {kind.attack} -> {kind.expect}{'  [CI]' if kind.ci else ''}")
        return 0
    try:
        kinds = poison.by_name(args.kinds.split(",")) if args.kinds else list(poison.KINDS)
    except ValueError as exc:
        parser.error(str(exc))
    if args.parallel < 1:
        parser.error("--parallel must be at least 1")

    target = connect(
        args.state_dir, start=args.start, need=("postgres", "objectstore", "triton", "airflow", "api")
    )
    tenant = f"bench-adv-{uuid.uuid4().hex[:8]}"
    scale = replace(poison.Scale(), upload_max_bytes=target.settings.UPLOAD_MAX_BYTES)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-adversarial-") as folder:
        print(
            f"writing {len(kinds)} kinds and {len(poison.CONTROLS) + 1} controls to {folder} ...", flush=True
        )
        controls = poison.write_corpus(Path(folder) / "controls", poison.CONTROLS, scale)
        samples = poison.write_corpus(Path(folder) / "poison", kinds, scale)
        (after,) = poison.write_corpus(Path(folder) / "after", [poison.CONTROL_AFTER], scale)
        client = target.client(tenant, timeout_s=60)
        searcher = target.client(tenant, timeout_s=60)
        run = Run(
            client, parallel=args.parallel, kind_timeout_s=args.kind_timeout, deadline=began + args.timeout
        )
        health = HealthProbe(target.grpc_address, service=args.health_service)
        workers = WorkerSampler(args.worker_pattern)
        with health, workers:
            print(f"tenant {tenant}: controls ...", flush=True)
            run.send(controls, together=True)
            renew = functools.partial(target.client, tenant, timeout_s=60)
            with SearchLoad(searcher, poison.CONTROL_QUERIES, renew=renew) as search:
                print("poison ...", flush=True)
                poisoned = run.send(samples)
                print("control after the poison ...", flush=True)
                run.send([after])
                run.finish()
                corpus_s = time.monotonic() - began
                fuzzed = None
                if args.fuzz_examples > 0:
                    print(f"fuzzing every RPC, {args.fuzz_examples} requests ...", flush=True)
                    run.marks.append((time.time(), "fuzz"))
                    fuzzed = run_fuzz(target, args.fuzz_examples)
        client.close()
        searcher.close()

    peaks = attribute(workers.samples, list(run.windows.values()))
    outcomes = [outcome(u, run.documents) for u in poisoned]
    control_outcomes = [
        outcome(u, run.documents) for u in run.uploads if u.sample.kind.expect.outcome == "indexed"
    ]
    slowest = health.slowest(run.marks)
    code = _report(
        args,
        target,
        tenant,
        outcomes,
        control_outcomes,
        peaks,
        workers,
        health,
        search,
        fuzzed,
        corpus_s,
        slowest,
    )
    if not args.keep:  # after the report: a failed clean-up never loses the run's numbers
        for owner in [tenant] + ([fuzzed["tenant"]] if fuzzed else []):
            with target.client(owner, role=Role.ADMIN) as admin:
                delete_all(admin)
    return code


def _refused_detail(outcomes: Sequence[Outcome]) -> str:
    missing = [o.kind for o in outcomes if not o.refused]
    return f"{len(outcomes) - len(missing)}/{len(outcomes)}" + (
        f"; not: {', '.join(missing)}" if missing else ""
    )


def _peak_cell(peak: PeakRss | None) -> str:
    if peak is None or peak.bytes is None:
        return "-"
    return f"{peak.bytes / MIB:.0f} ({'id' if peak.attribution == 'document id' else 'window'})"


def _report(
    args: argparse.Namespace,
    target: Target,
    tenant: str,
    outcomes: list[Outcome],
    controls: list[Outcome],
    peaks: dict[str, PeakRss],
    workers: WorkerSampler,
    health: HealthProbe,
    search: SearchLoad,
    fuzzed: dict[str, Any] | None,
    corpus_s: float,
    slowest: list[dict[str, Any]],
) -> int:
    rows = [
        [*row, _peak_cell(peaks.get(o.document_id or ""))]
        for row, o in zip(refused_table_rows(outcomes), outcomes, strict=True)
    ]
    print()
    print(
        report.table(
            f"Poison corpus: {len(outcomes)} kinds, tenant {tenant}, {corpus_s:.0f} s; {report.load_now()}",
            ["kind", "expected", "outcome", "as expected", "peak worker RSS MiB"],
            rows,
        )
    )
    print("(peak RSS: 'id' = samples of workers whose title names the document; 'window' = samples while")
    print(" it was the only document in progress; '-' = rejected at upload, or no sample caught it)")
    overall = overall_peak(workers.samples, {o.document_id for o in outcomes if o.document_id})
    pids = {s.pid for s in workers.samples}
    non_terminal = [o for o in [*outcomes, *controls] if o.result in {"non-terminal", "unknown"}]
    hl, sl = health.latency, search.latency
    print(f"controls: {', '.join(f'{o.kind} {o.result}' for o in controls)}")
    print(
        f"health ({hl.count} checks every 100 ms): p50 {hl.p50_ms:.1f} ms, p99 {hl.p99_ms:.1f} ms,"
        f" max {hl.max_ms:.1f} ms; answers {dict(health.answers)}"
    )
    worst = ", ".join(f"{row['ms']:.0f} ms ({row['during']})" for row in slowest[:5])
    print(f"slowest health checks: {worst}")
    print(
        f"search ({sl.count} hybrid searches answered): p50 {sl.p50_ms:.1f} ms, p99 {sl.p99_ms:.1f} ms,"
        f" max {sl.max_ms:.1f} ms; errors {dict(search.errors) or 0}"
        if sl.count
        else f"search: no search answered; errors {dict(search.errors) or 0}"
    )
    print(
        f"parser workers (cmdline ~ {args.worker_pattern!r}): {len(pids)} processes seen,"
        f" peak RSS {'-' if overall is None else f'{overall / MIB:.0f} MiB'}"
    )
    print(f"documents left non-terminal: {len(non_terminal)}")
    if fuzzed is not None:
        codes = ", ".join(f"{code} {n}" for code, n in Counter(fuzzed["codes"]).most_common())
        print(f"fuzz ({fuzzed['examples']} requests): {codes}; health during it {fuzzed['health']}")
        for failure in fuzzed["failures"][:10]:
            print(f"  {failure['method']} {failure['code']} {failure['details']!r} <- {failure['request']}")

    refused = [o for o in outcomes if o.refused]
    server_errors = sum(
        n for code, n in (fuzzed or {}).get("codes", {}).items() if code in {"INTERNAL", "UNKNOWN"}
    )
    checks = [
        Check(
            "every kind rejected or quarantined with a reason",
            len(refused) == len(outcomes),
            _refused_detail(outcomes),
        ),
        Check(
            "controls indexed",
            all(o.result == "indexed" for o in controls),
            ", ".join(f"{o.kind}: {o.summary}" for o in controls if o.result != "indexed") or "all",
        ),
        Check(
            "0 documents left non-terminal", not non_terminal, ", ".join(o.kind for o in non_terminal) or "0"
        ),
        Check(
            f"health max < {HEALTH_MAX_MS:.0f} ms",
            hl.count > 0 and hl.max_ms < HEALTH_MAX_MS,
            f"{hl.max_ms:.1f} ms",
        ),
        Check(
            f"health p99 < {HEALTH_P99_MS:.0f} ms",
            hl.count > 0 and hl.p99_ms < HEALTH_P99_MS,
            f"{hl.p99_ms:.1f} ms",
        ),
        Check("health always SERVING", health.always_serving, str(dict(health.answers))),
        Check(
            "parser worker peak RSS <= 1 GiB",
            overall is not None and overall <= WORKER_RSS_LIMIT,
            "no process matched --worker-pattern" if overall is None else f"{overall / MIB:.0f} MiB",
        ),
        Check(
            f"{args.fuzz_examples} fuzzed requests, 0 INTERNAL or UNKNOWN",
            None if fuzzed is None else fuzzed["examples"] >= args.fuzz_examples and server_errors == 0,
            "skipped" if fuzzed is None else f"{server_errors} of {fuzzed['examples']}",
        ),
    ]
    expected = sum(o.as_expected for o in outcomes)
    print()
    print(
        report.table(
            "Checks",
            ["check", "result", "detail"],
            [[c.name, report.verdict(c.ok), c.detail] for c in checks],
        )
    )
    print(f"(refused at the expected stage: {expected}/{len(outcomes)}; information only)")
    path = report.save(
        "adversarial",
        {
            "tenant": tenant,
            "corpus_seconds": corpus_s,
            "parallel": args.parallel,
            "kinds": [
                asdict(o)
                | {
                    "expect": str(o.expect),
                    "refused": o.refused,
                    "as_expected": o.as_expected,
                    "peak_rss_bytes": (peaks.get(o.document_id or "") or PeakRss(None, "none")).bytes,
                    "rss_attribution": (peaks.get(o.document_id or "") or PeakRss(None, "none")).attribution,
                }
                for o in outcomes
            ],
            "controls": [asdict(o) | {"expect": str(o.expect)} for o in controls],
            "health": asdict(hl) | {"answers": dict(health.answers), "slowest": slowest},
            "search": asdict(sl) | {"errors": dict(search.errors)},
            "workers": {"pattern": args.worker_pattern, "processes": len(pids), "peak_rss_bytes": overall},
            "non_terminal": [o.kind for o in non_terminal],
            "fuzz": fuzzed,
            "checks": [asdict(c) for c in checks],
        },
        args.results,
    )
    print(f"wrote {path}")
    return 0 if all(c.ok is not False for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
