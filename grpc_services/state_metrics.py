"""Metrics of the system's state in PostgreSQL, computed on scrape (a prometheus_client Collector).

The API process is the one always-on process with a database pool, so it exports what the
batch side (Airflow) leaves in the database:

- ``rag_documents{status}``: documents by ingestion status (every status, zeros included);
- ``rag_documents_overdue{status}``: documents past ``deadline_at`` in a non-terminal status
  (not ``indexed``/``quarantined``): ingestion that is stuck;
- ``rag_backup_last_success_timestamp_seconds{kind}``: end of the newest succeeded backup per
  kind (``database``, ``model_repository``); 0 when there has never been one;
- ``rag_embedding_index_info{model_version,status,dimension}``: 1 per active or building
  embedding index version;
- ``rag_memory_limit_bytes``: the process's memory budget (``MAX_MEMORY_GB``);
- ``rag_state_scrape_success`` / ``rag_state_scrape_duration_seconds``: whether the last
  database read worked and how long it took.

Results are cached for ``ttl_s`` seconds, so several Prometheus servers (or a dashboard refresh)
do not multiply the queries. A database error never breaks ``/metrics``: the state families are
left out, ``rag_state_scrape_success`` is 0 and the error is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rag.adapters.postgres.state import BACKUP_KINDS, DOCUMENT_STATUSES, TERMINAL_STATUSES, StateSnapshot

log = logging.getLogger(__name__)


class DatabaseStateCollector(Collector):
    """Yields the state families from ``read`` (a snapshot function), cached for ``ttl_s``."""

    def __init__(
        self,
        read: Callable[[], StateSnapshot],
        *,
        memory_limit_bytes: float | None = None,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._memory_limit_bytes = memory_limit_bytes
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, StateSnapshot | None, float] | None = None  # at, snapshot, seconds

    def describe(self) -> Iterator[Metric]:
        # Registration must not query the database: describe without values.
        return iter(())

    def _snapshot(self) -> tuple[StateSnapshot | None, float]:
        with self._lock:  # concurrent scrapes share one read
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self._ttl_s:
                return self._cached[1], self._cached[2]
            started = time.perf_counter()
            snapshot: StateSnapshot | None
            try:
                snapshot = self._read()
            except Exception as exc:
                log.warning("state metrics: database read failed: %s", exc or type(exc).__name__)
                snapshot = None
            elapsed = time.perf_counter() - started
            self._cached = (now, snapshot, elapsed)
            return snapshot, elapsed

    def collect(self) -> Iterator[Metric]:
        snapshot, elapsed = self._snapshot()
        yield GaugeMetricFamily(
            "rag_state_scrape_success",
            "1 when the last read of the system state from PostgreSQL worked.",
            value=0 if snapshot is None else 1,
        )
        yield GaugeMetricFamily(
            "rag_state_scrape_duration_seconds", "How long the last state read took.", value=elapsed
        )
        if self._memory_limit_bytes is not None:
            yield GaugeMetricFamily(
                "rag_memory_limit_bytes",
                "Memory budget of this process (MAX_MEMORY_GB).",
                value=self._memory_limit_bytes,
            )
        if snapshot is None:
            return
        yield _by_label(
            "rag_documents", "Documents by ingestion status.", "status", snapshot.documents, DOCUMENT_STATUSES
        )
        yield _by_label(
            "rag_documents_overdue",
            "Documents past their deadline in a non-terminal status (stuck ingestion).",
            "status",
            snapshot.overdue,
            [status for status in DOCUMENT_STATUSES if status not in TERMINAL_STATUSES],
        )
        yield _by_label(
            "rag_backup_last_success_timestamp_seconds",
            "Unix time the newest succeeded backup finished, by kind (0: never).",
            "kind",
            snapshot.last_backup,
            BACKUP_KINDS,
        )
        indexes = GaugeMetricFamily(
            "rag_embedding_index_info",
            "Embedding index versions that serve (active) or are being built.",
            labels=["model_version", "status", "dimension"],
        )
        for version, status, dimension in snapshot.indexes:
            indexes.add_metric([version, status, str(dimension)], 1)
        yield indexes


def _by_label(
    name: str, documentation: str, label: str, values: Mapping[str, float], keys: Iterable[str]
) -> GaugeMetricFamily:
    """A gauge with one sample per key, labelled ``label``; a key missing from ``values`` is 0."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key in keys:
        family.add_metric([key], values.get(key, 0))
    return family
