"""The Prometheus configuration and rules, checked by Debian's real ``promtool``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.unit.infra.tools import INFRA, REPO, tool

PROMETHEUS = INFRA / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((REPO / "tests" / "unit" / "infra" / "prometheus").glob("*_test.yml"))
REQUIRED_ALERTS = {
    "HighErrorRate",
    "HighMemoryUsage",
    "TritonModelNotReady",
    "IngestionStuck",
    "BackupMissing",
    "SearchLatencyHigh",
}


def promtool(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_production_config_is_valid() -> None:
    output = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "SUCCESS" in output
    jobs = {
        job["job_name"]
        for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    }
    assert {"rag-api", "triton", "seaweedfs", "mlflow", "postgres", "redis", "node", "airflow"} <= jobs


def test_rules_are_valid_and_cover_the_required_alerts() -> None:
    assert RULES
    promtool("check", "rules", *map(str, RULES))
    alerts = {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert alerts >= REQUIRED_ALERTS
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
                    assert "Runbook: docs/" in rule["annotations"]["description"], rule["alert"]
                    anchor = rule["annotations"]["description"].split("Runbook: ")[1].split("#")[0]
                    assert (REPO / anchor).exists(), f"{rule['alert']} points at a missing runbook {anchor}"


def test_rule_unit_tests_pass() -> None:
    assert RULE_TESTS
    tested = set()
    for path in RULE_TESTS:
        output = promtool("test", "rules", path.name, cwd=path.parent)
        assert "SUCCESS" in output
        tested |= {
            case["alertname"]
            for test in yaml.safe_load(path.read_text())["tests"]
            for case in test.get("alert_rule_test", [])
        }
    assert tested >= REQUIRED_ALERTS


def test_local_render_is_a_valid_config(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    output = tmp_path / "prometheus.yml"
    subprocess.run(
        [
            sys.executable,
            str(PROMETHEUS / "render_local.py"),
            "--state-dir",
            str(state),
            "--output",
            str(output),
            "--prometheus-port",
            "59999",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    promtool("check", "config", str(output))
    config = yaml.safe_load(output.read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    # The default Ports of rag.stack.config: API metrics, Triton metrics, SeaweedFS -metricsPort.
    assert targets == {
        "prometheus": ["127.0.0.1:59999"],
        "rag-api": ["127.0.0.1:29464"],
        "triton": ["127.0.0.1:28002"],
        "seaweedfs": ["127.0.0.1:28343"],
    }
