"""A real Prometheus (Debian's binary) scrapes the session stack and evaluates the rules."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from rag.stack.process import free_port
from rag.stack.stack import LocalStack
from tests.unit.infra.tools import INFRA, tool

pytestmark = pytest.mark.integration

EXPECTED_JOBS = {"prometheus", "rag-api", "triton", "seaweedfs"}


def api(port: int, path: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}?{query}", timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s:.0f} s; last: {last}")


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = work / "prometheus.yml"
    subprocess.run(
        [
            sys.executable,
            str(INFRA / "prometheus" / "render_local.py"),
            "--state-dir",
            str(stack.config.state_dir),
            "--output",
            str(config),
            "--prometheus-port",
            str(port),
            "--scrape-interval",
            "1s",
            "--evaluation-interval",
            "1s",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    log = (work / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).status == 200,
            30,
            "ready",
        )
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def test_every_target_is_up(prometheus: int) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = api(prometheus, "/api/v1/targets")["activeTargets"]
        jobs = {t["labels"]["job"] for t in targets}
        return targets if jobs == EXPECTED_JOBS and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(all_up, 30, "every target up")
    assert {t["labels"]["job"] for t in targets} == EXPECTED_JOBS
    result = api(prometheus, "/api/v1/query", query="up")["result"]
    assert {r["metric"]["job"]: r["value"][1] for r in result} == dict.fromkeys(EXPECTED_JOBS, "1")


def test_rules_evaluate_on_the_stack(prometheus: int) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = api(prometheus, "/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules)
        return rules if done and all(r["health"] == "ok" for r in rules) else None

    rules = wait_for(evaluated, 30, "every rule evaluated with health ok")
    names = {r["name"] for r in rules}
    assert {"HighErrorRate", "IngestionStuck", "BackupMissing", "TritonModelNotReady"} <= names

    # The recording rule over the API's database-state collector has a real value.
    overdue = wait_for(
        lambda: api(prometheus, "/api/v1/query", query="rag:documents_overdue:sum")["result"],
        20,
        "rag:documents_overdue:sum recorded",
    )
    assert overdue[0]["metric"]["job"] == "rag-api"
    assert float(overdue[0]["value"][1]) >= 0
    # Both required Triton models are loaded in the stack: TritonModelNotReady does not fire
    # (other tests may reload a model for a moment, so "pending" is possible, "firing" is not).
    triton = next(r for r in rules if r["name"] == "TritonModelNotReady")
    assert triton["state"] != "firing", triton
