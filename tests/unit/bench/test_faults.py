"""The fault matrix's bookkeeping (bench.faults): phases of calls, verdicts, finding a task process."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from bench.faults.cell import CellResult, split_calls
from bench.faults.inject import task_process
from bench.faults.loads import Call, HealthSample, LoadRecord


def call(started: float, code: str) -> Call:
    return Call("Search", started, 0.01, code)


def test_calls_are_split_by_the_phase_they_started_in() -> None:
    calls = [
        call(1, "OK"),
        call(5, "UNAVAILABLE"),
        call(9.9, "INTERNAL"),
        call(10, "OK"),
        call(12, "INTERNAL"),
    ]
    phases = split_calls(calls, kill_at=5, recovered_at=10)
    assert phases["before"] == {"OK": 1}
    assert phases["outage"] == {"UNAVAILABLE": 1, "INTERNAL": 1}
    assert phases["after"] == {"OK": 1, "INTERNAL": 1}


def test_without_a_recovery_everything_after_the_kill_is_the_outage() -> None:
    phases = split_calls([call(1, "OK"), call(50, "INTERNAL")], kill_at=5, recovered_at=None)
    assert phases["outage"] == {"INTERNAL": 1}
    assert not phases["after"]


def test_serving_since_is_the_first_serving_sample_from_then_on() -> None:
    statuses = ["SERVING", "UNAVAILABLE", "NOT_SERVING", "SERVING"]
    record = LoadRecord(health=[HealthSample(n + 1, status) for n, status in enumerate(statuses)])
    assert record.serving_since(2) == 4
    assert record.serving_since(5) is None


def result(**changes: Any) -> CellResult:
    fields: dict[str, Any] = {
        "cell": "triton",
        "signal": "SIGKILL",
        "tenant": "faults-triton-x",
        "documents": 30,
        "kill": {},
        "recovery_s": 12.0,
        "up_s": 10.0,
        "up_errors": [],
        "restarted": ["triton"],
        "serving_after_return_s": 2.0,
        "uploads_acknowledged": 10,
        "lost": 0,
        "lost_detail": {},
        "duplicated_chunks": 0,
        "chunks": 60,
        "statuses": {"indexed": 40},
        "non_terminal": 0,
        "non_terminal_detail": [],
        "terminal_after_recovery_s": 20.0,
        "sweeper_triggered_at_s": [],
        "runs": {"success": 11},
        "green_with_unfinished": [],
        "calls": {"before": {"OK": 5}, "outage": {"UNAVAILABLE": 3}, "after": {"OK": 9, "UNAVAILABLE": 1}},
        "calls_by_method": {},
        "messages": {},
        "load": "load 1.00/1.00 on 2 cpus",
    }
    return CellResult(**(fields | changes))


def test_a_clean_cell_meets_every_point() -> None:
    assert all(result().verdicts().values())


def test_each_point_fails_on_its_own() -> None:
    failing: dict[str, dict[str, Any]] = {
        "0 lost": {"lost": 1},
        "0 duplicated": {"duplicated_chunks": 2},
        "0 non-terminal": {"non_terminal": 3},
        "0 green runs with unfinished": {"green_with_unfinished": [{"run_id": "r", "unfinished": 1}]},
        "0 INTERNAL/UNKNOWN after recovery": {"calls": {"before": {}, "outage": {}, "after": {"UNKNOWN": 1}}},
        "SERVING within 30 s": {"serving_after_return_s": 30.5},
    }
    for point, change in failing.items():
        verdicts = result(**change).verdicts()
        assert [k for k, ok in verdicts.items() if not ok] == [point], point
    assert not result(serving_after_return_s=None).verdicts()["SERVING within 30 s"]


def test_internal_during_the_outage_is_not_counted_after_recovery() -> None:
    assert result(calls={"before": {}, "outage": {"INTERNAL": 4}, "after": {"OK": 1}}).internal_after == 0


def test_the_task_process_is_found_by_its_title() -> None:
    ti = str(uuid.uuid4())
    script = f"import setproctitle, time; setproctitle.setproctitle('airflow worker -- {ti}'); time.sleep(60)"
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        found = None
        while found is None and time.monotonic() < deadline:
            found = task_process([ti])
            time.sleep(0.1)
        assert found == process.pid
        assert task_process([str(uuid.uuid4())]) is None
    finally:
        process.kill()
        process.wait()


def test_a_failed_cell_is_recorded_and_the_others_go_on(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.faults.__main__ import _recorded

    failures: dict[str, str] = {}

    def broken() -> int:
        raise ConnectionError("postgres did not come back")

    assert _recorded(failures, "postgres", broken) is None
    assert _recorded(failures, "redis", lambda: 7) == 7
    assert failures == {"postgres": "ConnectionError: postgres did not come back"}
    assert "Traceback" in capsys.readouterr().err
