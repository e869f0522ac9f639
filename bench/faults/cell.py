"""One cell of the fault matrix: all three loads, one component killed, ``up()``, measurements.

``run_cell`` is importable (the CI-sized test runs it with ``documents=20``): (a) one
``ingest_documents`` run over ``documents`` SciFact abstracts written as files to a fresh folder,
in a fresh tenant; (b) closed-loop searchers; (c) an upload stream (:mod:`bench.faults.loads`).
``kill_after_s`` after the run was triggered the component gets ``signal``; ``recover_after_s``
later ``LocalStack.up()`` recovers it (:mod:`bench.faults.inject`). The loads go on for
``load_after_s`` past recovery; then the cell waits (up to ``settle_s``, two sweeper periods by
default) for every run of the tenant to end and every document to be terminal. Once no run of
the tenant is left and documents still are not terminal, it triggers ``ingest_sweeper`` itself,
as its schedule would (every ``sweep_period_s``), with ``received_grace_minutes=0``. Last, the
tenant's documents are deleted (gRPC DeleteDocument) and the folder removed.
"""

from __future__ import annotations

import contextlib
import signal as signals
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench import report
from bench.faults import measure
from bench.faults.corpus import Corpus, ensure_search_tenant, remove_folder, scifact, write_folder
from bench.faults.inject import Kill, Recovery, kill, recover, stack_component
from bench.faults.loads import Call, Loads
from bench.faults.runs import (
    INGEST_DAG,
    SWEEPER_DAG,
    AirflowRuns,
    RunWatch,
    wait_for_dags,
    wait_for_running_task,
)
from bench.target import Target
from rag.core.auth import Role
from rag.core.errors import RagError

SWEEPER_PERIOD_S = 600.0  # ingest_sweeper's schedule
SERVING_WITHIN_S = 30.0
FAILURE_CODES = frozenset({"INTERNAL", "UNKNOWN"})

Progress = Callable[[str], None]


def split_calls(calls: Sequence[Call], kill_at: float, recovered_at: float | None) -> dict[str, Counter[str]]:
    """Status codes by phase: before the kill, during the outage (kill until every component is
    healthy and the API SERVING again), after recovery; a call belongs to the phase it started in."""
    phases: dict[str, Counter[str]] = {"before": Counter(), "outage": Counter(), "after": Counter()}
    for call in calls:
        if call.started < kill_at:
            phase = "before"
        elif recovered_at is None or call.started < recovered_at:
            phase = "outage"
        else:
            phase = "after"
        phases[phase][call.code] += 1
    return phases


def by_method(
    calls: Sequence[Call], kill_at: float, recovered_at: float | None
) -> dict[str, dict[str, dict[str, int]]]:
    methods = sorted({c.method for c in calls})
    return {
        m: {
            p: dict(c)
            for p, c in split_calls([c for c in calls if c.method == m], kill_at, recovered_at).items()
        }
        for m in methods
    }


def errors_only(codes: Counter[str]) -> dict[str, int]:
    return {code: n for code, n in sorted(codes.items()) if code != "OK"}


@dataclass
class CellResult:
    cell: str
    signal: str
    tenant: str
    documents: int
    kill: dict[str, Any]
    recovery_s: float | None  # start of up() until every component is healthy and the API SERVING
    up_s: float
    up_errors: list[str]
    restarted: list[str]
    serving_after_return_s: float | None  # the killed component healthy -> API health SERVING
    uploads_acknowledged: int
    lost: int
    lost_detail: dict[str, list[str]]
    duplicated_chunks: int
    chunks: int
    statuses: dict[str, int]  # the tenant's documents at the end
    non_terminal: int
    non_terminal_detail: list[tuple[str, str, str, float | None]]  # id, status, error, claim left s
    terminal_after_recovery_s: float | None  # recovery -> every document terminal (None: never)
    sweeper_triggered_at_s: list[float]  # after recovery
    runs: dict[str, int]  # by final state (running/queued: never finished within the wait)
    green_with_unfinished: list[dict[str, Any]]
    calls: dict[str, dict[str, int]]  # phase -> code -> count
    calls_by_method: dict[str, dict[str, dict[str, int]]]  # method -> phase -> code -> count
    messages: dict[str, str]  # "<method> <code>" -> the first message with that status
    load: str
    cleanup: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def internal_after(self) -> int:
        return sum(n for code, n in self.calls["after"].items() if code in FAILURE_CODES)

    def verdicts(self) -> dict[str, bool]:
        return {
            "0 lost": self.lost == 0,
            "0 duplicated": self.duplicated_chunks == 0,
            "0 non-terminal": self.non_terminal == 0,
            "0 green runs with unfinished": not self.green_with_unfinished,
            "0 INTERNAL/UNKNOWN after recovery": self.internal_after == 0,
            f"SERVING within {SERVING_WITHIN_S:.0f} s": self.serving_after_return_s is not None
            and self.serving_after_return_s <= SERVING_WITHIN_S,
        }


def new_tenant(label: str) -> str:
    return f"faults-{label}-{uuid.uuid4().hex[:8]}"


def corpus_loads(
    target: Target,
    tenant: str,
    corpus: Corpus,
    *,
    searchers: int,
    upload_interval_s: float,
    uploads_in_flight: int = 1,
) -> Loads:
    """A cell's searchers (on the corpus's search tenant, indexed once) and its upload stream
    into ``tenant``."""
    return Loads(
        target.grpc_address,
        target.settings,
        tenant,
        queries=corpus.queries,
        texts=corpus.upload_texts,
        searchers=searchers,
        upload_interval_s=upload_interval_s,
        uploads_in_flight=uploads_in_flight,
        nonce=tenant,
        search_tenant=ensure_search_tenant(target.settings, corpus),
    )


def run_cell(
    target: Target,
    cell: str,
    *,
    documents: int = 300,
    kill_after_s: float = 12.0,
    recover_after_s: float = 15.0,
    signal: int = signals.SIGKILL,
    corpus: Corpus | None = None,
    data: Path | None = None,
    searchers: int = 8,
    upload_interval_s: float = 2.0,
    uploads_in_flight: int = 1,
    load_after_s: float = 20.0,
    settle_s: float = 2 * SWEEPER_PERIOD_S,
    sweep_period_s: float = SWEEPER_PERIOD_S,
    progress: Progress = lambda line: None,
) -> CellResult:
    settings = target.settings
    tenant = new_tenant(cell)
    corpus = corpus or scifact(documents, nonce=tenant, data=data)
    loads = corpus_loads(
        target,
        tenant,
        corpus,
        searchers=searchers,
        upload_interval_s=upload_interval_s,
        uploads_in_flight=uploads_in_flight,
    )
    folder = write_folder(settings, corpus, tenant)
    airflow = AirflowRuns.from_settings(settings)
    watch = RunWatch(airflow, settings, tenant, folder).start()
    notes: list[str] = []
    cleaned = False
    try:
        wait_for_dags(airflow, (INGEST_DAG, SWEEPER_DAG))
        loads.start()
        run_id = airflow.trigger(INGEST_DAG, {"source": str(folder), "tenant": tenant})
        began = time.monotonic()
        progress(f"{cell}: run {run_id} over {len(corpus.documents)} files in {folder.name}, tenant {tenant}")
        time.sleep(max(0.0, began + kill_after_s - time.monotonic()))
        task_ids = wait_for_running_task(airflow, run_id) if cell == "airflow-task" else None
        fault = kill(target.stack, cell, signal, task_ids=task_ids)
        progress(
            f"{cell}: {fault.signal} to pid {fault.pid} ({fault.process[:60]}) at {fault.at - began:.1f} s"
        )
        time.sleep(recover_after_s)
        recovery = recover(target.stack, stack_component(cell))
        recovered_at = recovery.all_healthy
        progress(
            f"{cell}: up() {recovery.up_s:.1f} s (restarted: {', '.join(recovery.restarted) or 'none'}),"
            f" healthy after {_fmt(recovery.seconds(recovered_at))} s"
        )
        time.sleep(load_after_s)
        record = loads.stop()
        settle = _settle(
            airflow,
            watch,
            settings,
            tenant,
            recovered_at or time.monotonic(),
            settle_s,
            sweep_period_s,
            progress,
        )
        watch.stop()
        _final_poll(watch, notes)
        losses = measure.losses(
            settings, tenant, record.acknowledged, folder, [n for n, _ in corpus.documents]
        )
        leftover = measure.non_terminal(settings, tenant)
        back = recovery.component_back
        serving = record.serving_since(back) if back is not None else None
        result = CellResult(
            cell=cell,
            signal=fault.signal,
            tenant=tenant,
            documents=len(corpus.documents),
            kill={"pid": fault.pid, "process": fault.process, "after_s": round(fault.at - began, 1)},
            recovery_s=recovery.seconds(recovered_at),
            up_s=recovery.up_s,
            up_errors=recovery.errors,
            restarted=recovery.restarted,
            serving_after_return_s=None if serving is None or back is None else max(0.0, serving - back),
            uploads_acknowledged=losses.uploads_acknowledged,
            lost=losses.lost,
            lost_detail={"uploads": losses.uploads_lost, "files": losses.files_lost},
            duplicated_chunks=measure.duplicated_chunks(settings, tenant),
            chunks=measure.chunk_count(settings, tenant),
            statuses=dict(measure.status_counts(settings, tenant)),
            non_terminal=len(leftover),
            non_terminal_detail=leftover[:20],
            terminal_after_recovery_s=settle.terminal_after_s,
            sweeper_triggered_at_s=settle.sweeps,
            runs=dict(Counter(watch.states.values())),
            green_with_unfinished=[vars(g) for g in watch.green_with_unfinished()],
            calls={p: dict(c) for p, c in split_calls(record.calls, fault.at, recovered_at).items()},
            calls_by_method=by_method(record.calls, fault.at, recovered_at),
            messages=record.messages,
            load=report.load_now(),
            notes=notes,
        )
        result.cleanup = cleanup(target, tenant)
        cleaned = True
        return result
    finally:
        loads.stop()
        watch.stop()
        airflow.close()
        remove_folder(folder)
        if not cleaned:
            with contextlib.suppress(Exception):
                progress(f"{cell}: the cell did not complete; {cleanup(target, tenant)}")


@dataclass
class Settled:
    terminal_after_s: float | None
    sweeps: list[float]


def _settle(
    airflow: AirflowRuns,
    watch: RunWatch,
    settings: Any,
    tenant: str,
    recovered_at: float,
    settle_s: float,
    sweep_period_s: float,
    progress: Progress,
) -> Settled:
    """Wait until every run of the tenant ended and every document is terminal (or
    ``settle_s`` after recovery); trigger the sweeper as its schedule would."""
    deadline = recovered_at + settle_s
    terminal_at: float | None = None
    sweeps: list[float] = []
    sweeper_run: str | None = None
    last_report = 0.0
    while time.monotonic() < deadline:
        try:
            left = len(measure.non_terminal(settings, tenant))
        except measure.DatabaseError:
            left = -1
        now = time.monotonic()
        if left == 0 and terminal_at is None:
            terminal_at = now
        elif left != 0:
            terminal_at = None
        active = watch.active()
        if left == 0 and not active:
            break
        if (
            left > 0
            and not active
            and _sweeper_due(airflow, sweeper_run, sweeps, recovered_at, sweep_period_s)
        ):
            try:
                sweeper_run = airflow.trigger(SWEEPER_DAG, {"received_grace_minutes": 0})
                sweeps.append(round(now - recovered_at, 1))
                progress(f"  {left} documents not terminal and no run left: triggered {SWEEPER_DAG}")
            except RagError as exc:
                progress(f"  could not trigger {SWEEPER_DAG}: {exc}")
        if now - last_report >= 30:
            last_report = now
            progress(f"  settling: {left} documents not terminal, {len(active)} runs active")
        time.sleep(2)
    return Settled(None if terminal_at is None else max(0.0, terminal_at - recovered_at), sweeps)


def _sweeper_due(
    airflow: AirflowRuns, run_id: str | None, sweeps: list[float], recovered_at: float, period_s: float
) -> bool:
    if run_id is None:
        return True
    try:
        if airflow.run_state(SWEEPER_DAG, run_id) not in {"success", "failed"}:
            return False
    except RagError:
        return False
    return time.monotonic() - recovered_at - sweeps[-1] >= period_s


def _final_poll(watch: RunWatch, notes: list[str]) -> None:
    try:
        watch.poll()
    except (RagError, OSError, measure.DatabaseError) as exc:
        notes.append(f"last run poll failed: {exc}")
    if watch.polls_failed:
        notes.append(f"{watch.polls_failed} run polls failed (Airflow or PostgreSQL down meanwhile)")


def cleanup(target: Target, tenant: str) -> str:
    """Delete every document of the tenant through the API (blobs go with them)."""
    ids = measure.tenant_document_ids(target.settings, tenant)
    failed = 0
    with target.client(tenant, role=Role.ADMIN, timeout_s=30) as client:
        for doc_id in ids:
            for delay in (0.0, 0.5, 1.0, 2.0, 4.0):
                time.sleep(delay)
                try:
                    client.delete(doc_id)
                    break
                except grpc.RpcError as exc:
                    if exc.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                        failed += 1
                        break
            else:
                failed += 1
    return f"deleted {len(ids) - failed} of {len(ids)} documents" + (f" ({failed} failed)" if failed else "")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


__all__ = ["CellResult", "Kill", "Recovery", "run_cell", "split_calls"]
