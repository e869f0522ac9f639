"""The graceful row: each component in turn gets SIGTERM (Airflow: its supervisor) under loads
(b) searches and (c) uploads, ``recover_after_s`` later ``LocalStack.up()`` recovers it.

Pass: every call that started during the outage (SIGTERM until every component is healthy and
the API SERVING again) ended OK, UNAVAILABLE or RESOURCE_EXHAUSTED (nothing worse), a client's
bounded retry of a Search and of an Upload (back-off 0.5 s doubling to 8 s, 8 attempts)
succeeds once the stack is back, and every acknowledged upload has its document.
"""

from __future__ import annotations

import signal as signals
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench import report
from bench.faults import measure
from bench.faults.cell import Progress, by_method, cleanup, corpus_loads, errors_only, new_tenant, split_calls
from bench.faults.corpus import Corpus
from bench.faults.inject import kill, recover
from bench.faults.loads import retry_probe
from bench.target import Target

ACCEPTABLE = frozenset({"OK", "UNAVAILABLE", "RESOURCE_EXHAUSTED"})


@dataclass
class GracefulResult:
    component: str
    signal: str
    recovery_s: float | None
    restarted: list[str]
    up_errors: list[str]
    calls: dict[str, dict[str, int]]
    calls_by_method: dict[str, dict[str, dict[str, int]]]
    messages: dict[str, str]
    worse_than_unavailable: dict[str, int]  # codes of calls during the outage beyond ACCEPTABLE
    retries: list[dict[str, Any]]
    uploads_acknowledged: int
    uploads_lost: list[str]
    load: str
    cleanup: str = ""
    notes: list[str] = field(default_factory=list)

    def verdicts(self) -> dict[str, bool]:
        return {
            "nothing worse than UNAVAILABLE": not self.worse_than_unavailable,
            "client retry succeeds": bool(self.retries) and all(r["succeeded"] for r in self.retries),
            "0 lost": not self.uploads_lost,
            "recovered": self.recovery_s is not None,
        }


def graceful_cell(
    target: Target,
    component: str,
    *,
    corpus: Corpus,
    before_s: float = 5.0,
    recover_after_s: float = 15.0,
    load_after_s: float = 10.0,
    searchers: int = 8,
    upload_interval_s: float = 2.0,
    signal: int = signals.SIGTERM,
    progress: Progress = lambda line: None,
) -> GracefulResult:
    settings = target.settings
    tenant = new_tenant(f"graceful-{component}")
    loads = corpus_loads(target, tenant, corpus, searchers=searchers, upload_interval_s=upload_interval_s)
    try:
        loads.start()
        time.sleep(before_s)
        fault = kill(target.stack, component, signal)
        progress(f"graceful {component}: {fault.signal} to pid {fault.pid}")
        time.sleep(recover_after_s)
        recovery = recover(target.stack, component)
        retries = retry_probe(
            target.grpc_address, settings, tenant, query=corpus.queries[0], text=corpus.upload_texts[0]
        )
        time.sleep(load_after_s)
        record = loads.stop()
        acknowledged = record.acknowledged + [r.document_id for r in retries if r.document_id]
        lost = measure.missing(settings, acknowledged)
        phases = split_calls(record.calls, fault.at, recovery.all_healthy)
        worse = Counter({c: n for c, n in phases["outage"].items() if c not in ACCEPTABLE})
        progress(
            f"graceful {component}: healthy after {recovery.seconds(recovery.all_healthy)} s;"
            f" outage codes {dict(phases['outage'])}; retries {[r.codes for r in retries]}"
        )
        result = GracefulResult(
            component=component,
            signal=fault.signal,
            recovery_s=recovery.seconds(recovery.all_healthy),
            restarted=recovery.restarted,
            up_errors=recovery.errors,
            calls={p: dict(c) for p, c in phases.items()},
            calls_by_method=by_method(record.calls, fault.at, recovery.all_healthy),
            messages=record.messages,
            worse_than_unavailable=errors_only(worse),
            retries=[vars(r) for r in retries],
            uploads_acknowledged=len(acknowledged),
            uploads_lost=lost,
            load=report.load_now(),
        )
        result.cleanup = cleanup(target, tenant)
        return result
    finally:
        loads.stop()
