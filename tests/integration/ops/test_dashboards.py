"""Every metric the dashboards and alert rules query is one the stack's services really export."""

from __future__ import annotations

import json
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rag.stack.stack import LocalStack
from tests.unit.infra.tools import INFRA, metric_names

pytestmark = pytest.mark.integration

# Series Prometheus itself adds to every target.
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
}


def production_only() -> set[str]:
    lines = (INFRA / "grafana" / "production-only-metrics.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def exported_names(port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def exported(stack: LocalStack) -> set[str]:
    ports = stack.config.ports
    metrics_ports = [ports.metrics, ports.triton_metrics, ports.seaweed()["metricsPort"]]
    names = set().union(*(exported_names(port) for port in metrics_ports))
    # The state collector's families (from PostgreSQL) are part of the API's real output.
    assert {"rag_documents", "rag_documents_overdue", "rag_backup_last_success_timestamp_seconds"} <= names
    assert {"rag_grpc_requests_total", "rag_cache_requests_total", "nv_inference_count"} <= names
    return names


def dashboard_exprs() -> dict[str, list[str]]:
    exprs: dict[str, list[str]] = {}
    for path in sorted((INFRA / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        exprs[path.name] = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return exprs


def test_dashboard_queries_use_exported_metrics(exported: set[str]) -> None:
    allowed = exported | production_only() | PROMETHEUS_SYNTHETIC
    exprs = dashboard_exprs()
    assert set(exprs) == {
        "rag-search.json",
        "rag-ingestion.json",
        "rag-triton.json",
        "rag-postgres.json",
        "rag-cache.json",
    }
    unknown = {
        f"{name}: {metric}"
        for name, queries in exprs.items()
        for query in queries
        for metric in metric_names(query) - allowed
    }
    assert not unknown, f"dashboards query metrics nobody exports: {sorted(unknown)}"
    # The production-only list only names what a dashboard or rule really uses.
    used = {m for queries in exprs.values() for q in queries for m in metric_names(q)}
    used |= rule_metrics()
    assert production_only() <= used, sorted(production_only() - used)


def rule_metrics() -> set[str]:
    names: set[str] = set()
    for path in (INFRA / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names |= metric_names(rule["expr"])
    return names


def test_alert_rules_use_exported_metrics(exported: set[str]) -> None:
    recorded = {
        rule["record"]
        for path in (INFRA / "prometheus" / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    unknown = rule_metrics() - exported - production_only() - PROMETHEUS_SYNTHETIC - recorded
    assert not unknown, f"rules query metrics nobody exports: {sorted(unknown)}"


def test_state_metrics_read_the_database(exported: set[str], stack: LocalStack) -> None:
    port = stack.config.ports.metrics
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    assert families["rag_state_scrape_success"].samples[0].value == 1
    statuses = {s.labels["status"] for s in families["rag_documents"].samples}
    assert statuses == {"received", "parsed", "chunked", "embedded", "indexed", "quarantined"}
    kinds = {s.labels["kind"] for s in families["rag_backup_last_success_timestamp_seconds"].samples}
    assert kinds == {"database", "model_repository"}


def test_dashboards_point_at_the_provisioned_datasource() -> None:
    datasource = yaml.safe_load(
        (INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = datasource["datasources"][0]["uid"]
    provider = yaml.safe_load((INFRA / "grafana" / "provisioning" / "dashboards" / "rag.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    uids = []
    for path in sorted((INFRA / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        uids.append(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
    assert len(uids) == len(set(uids))
