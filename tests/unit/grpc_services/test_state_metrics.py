"""The database-state collector: families, caching, and a database error that never breaks /metrics."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from grpc_services.state_metrics import DatabaseStateCollector
from rag.adapters.postgres.state import StateSnapshot


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scrape(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    families = text_string_to_metric_families(generate_latest(registry).decode())
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families}


SNAPSHOT = StateSnapshot(
    documents={"indexed": 7, "chunked": 2},
    overdue={"chunked": 2},
    last_backup={"database": 1_700_000_000.0},
    indexes=(("all-MiniLM-L6-v2@sha256:aa", "active", 384),),
)


def test_families_from_a_snapshot() -> None:
    registry = CollectorRegistry()
    registry.register(DatabaseStateCollector(lambda: SNAPSHOT, memory_limit_bytes=2**30))
    metrics = scrape(registry)
    documents = {labels["status"]: value for labels, value in metrics["rag_documents"]}
    assert documents == {
        "received": 0,
        "parsed": 0,
        "chunked": 2,
        "embedded": 0,
        "indexed": 7,
        "quarantined": 0,
    }
    overdue = {labels["status"]: value for labels, value in metrics["rag_documents_overdue"]}
    assert overdue == {"received": 0, "parsed": 0, "chunked": 2, "embedded": 0}
    backups = {
        labels["kind"]: value for labels, value in metrics["rag_backup_last_success_timestamp_seconds"]
    }
    assert backups == {"database": 1_700_000_000.0, "model_repository": 0.0}
    assert metrics["rag_embedding_index_info"] == [
        ({"model_version": "all-MiniLM-L6-v2@sha256:aa", "status": "active", "dimension": "384"}, 1.0)
    ]
    assert metrics["rag_state_scrape_success"] == [({}, 1.0)]
    assert metrics["rag_memory_limit_bytes"] == [({}, float(2**30))]


def test_reads_are_cached_for_the_ttl() -> None:
    calls = []
    clock = Clock()

    def read() -> StateSnapshot:
        calls.append(clock.now)
        return SNAPSHOT

    registry = CollectorRegistry()
    registry.register(DatabaseStateCollector(read, ttl_s=5.0, clock=clock))
    scrape(registry)
    clock.now += 4.9
    scrape(registry)
    assert len(calls) == 1
    clock.now += 0.2
    scrape(registry)
    assert len(calls) == 2


def test_a_database_error_leaves_metrics_working(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> StateSnapshot:
        raise ConnectionError("connection refused")

    registry = CollectorRegistry()
    registry.register(DatabaseStateCollector(broken, memory_limit_bytes=1.0))
    with caplog.at_level(logging.WARNING, logger="grpc_services.state_metrics"):
        metrics = scrape(registry)
    assert metrics["rag_state_scrape_success"] == [({}, 0.0)]
    assert "rag_documents" not in metrics and "rag_memory_limit_bytes" in metrics
    assert "connection refused" in caplog.text


def test_registration_does_not_read() -> None:
    def never() -> StateSnapshot:
        raise AssertionError("read at registration")

    CollectorRegistry().register(DatabaseStateCollector(never))
