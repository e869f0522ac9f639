"""The adversarial benchmark's judging: outcomes, latency ranks, and parser-worker RSS per kind."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bench.adversarial.harness import Outcome
from bench.adversarial.poison import INDEXED, QUARANTINED, REFUSED, REJECTED, Expect
from bench.adversarial.probes import Latencies, Window, WorkerSample, WorkerSampler, attribute, overall_peak


def judged(expect: Expect, result: str, reason: str = "why", code: str | None = None) -> Outcome:
    return Outcome("kind", "attack", expect, result, code, reason, None)


@pytest.mark.parametrize(
    ("expect", "result", "code", "reason", "refused", "as_expected"),
    [
        (REJECTED, "rejected", "INVALID_ARGUMENT", "title: too long", True, True),
        (REJECTED, "rejected", "RESOURCE_EXHAUSTED", "busy", True, False),
        (REJECTED, "quarantined", None, "too long", True, False),
        (QUARANTINED, "quarantined", None, "no text", True, True),
        (QUARANTINED, "quarantined", None, "  ", False, False),  # a refusal must say why
        (QUARANTINED, "rejected", "INVALID_ARGUMENT", "binary", True, False),
        (REFUSED, "rejected", "INVALID_ARGUMENT", "binary", True, True),
        (REFUSED, "quarantined", None, "binary", True, True),
        (REFUSED, "indexed", None, "", False, False),
        (REFUSED, "non-terminal", None, "still parsed", False, False),
        (INDEXED, "indexed", None, "", False, True),
        (INDEXED, "quarantined", None, "no text", True, False),
    ],
)
def test_outcomes_are_judged(
    expect: Expect, result: str, code: str | None, reason: str, refused: bool, as_expected: bool
) -> None:
    outcome = judged(expect, result, reason, code)
    assert (outcome.refused, outcome.as_expected) == (refused, as_expected)


def test_latencies_rank_without_interpolation() -> None:
    stats = Latencies.of([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert (stats.count, stats.p50_ms, stats.p99_ms, stats.max_ms) == (100, 50.0, 99.0, 100.0)
    assert Latencies.of([]) == Latencies(0, 0.0, 0.0, 0.0)


def test_worker_rss_goes_to_the_only_open_window_when_workers_do_not_name_documents() -> None:
    a, b, c = "a" * 8, "b" * 8, "c" * 8
    windows = [Window(a, 0.0, 10.0), Window(b, 10.5, 20.0), Window(c, 15.0, None)]
    samples = [
        WorkerSample(1.0, 1, 100, 150, frozenset()),  # only a's window: a
        WorkerSample(12.0, 1, 300, 300, frozenset()),  # only b's: b
        WorkerSample(16.0, 2, 900, 900, frozenset()),  # b and c overlap: nobody
        WorkerSample(30.0, 1, 50, 300, frozenset()),  # only c's (still open)
    ]
    peaks = attribute(samples, windows)
    assert [(peaks[d].bytes, peaks[d].attribution) for d in (a, b, c)] == [
        (100, "window"),
        (300, "window"),
        (50, "window"),
    ]
    assert overall_peak(samples, {a}) == 900  # without names, every worker counts
    assert overall_peak([], {a}) is None


def test_worker_rss_goes_to_the_document_a_worker_names() -> None:
    a, b, other = "a" * 8, "b" * 8, "f" * 8
    windows = [Window(a, 0.0, 10.0), Window(b, 10.5, 20.0)]
    samples = [
        WorkerSample(1.0, 1, 100, 400, frozenset({a})),
        WorkerSample(2.0, 1, 30, 30, frozenset()),  # idle: nobody's, even inside a's window
        WorkerSample(3.0, 2, 2000, 2000, frozenset({other})),  # another tenant's document
    ]
    peaks = attribute(samples, windows)
    assert (peaks[a].bytes, peaks[a].attribution) == (100, "document id")
    assert (peaks[b].bytes, peaks[b].attribution) == (None, "none")  # parsed between two samples
    assert overall_peak(samples, {a, b}) == 400  # its high-water mark; not the other document's


def test_worker_sampler_reads_a_live_process_by_its_title(tmp_path: Path) -> None:
    document = str(uuid.uuid4())
    title = f"rag-parser {document}"
    code = (
        "import setproctitle, sys, time\n"
        f"setproctitle.setproctitle({title!r})\n"
        "block = bytearray(64 * 2**20)\n"  # touched: resident
        "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(30)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        with WorkerSampler(r"rag[-_ ]parser", interval_s=0.05) as sampler:
            for _ in range(200):  # a hang guard, not a timing assert
                if any(s.pid == worker.pid for s in sampler.samples):
                    break
                time.sleep(0.05)
    finally:
        worker.kill()
        worker.wait()
    mine = [s for s in sampler.samples if s.pid == worker.pid]  # other workers may run on this machine
    assert mine and all(s.documents == {document} for s in mine)
    assert min(s.rss for s in mine) > 64 * 2**20 and all(s.hwm >= s.rss for s in mine)
