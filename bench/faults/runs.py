"""The ``ingest_documents`` runs of a cell, through Airflow's REST API, and the one check that
needs their timing: did a run report success while one of its documents was not terminal?

:class:`RunWatch` polls the runs whose conf names the cell's tenant (the folder's run and the
runs the uploads triggered) every ``POLL_S``; the moment it first sees one in ``success`` it
counts that run's documents that are neither indexed nor quarantined (the folder's files for
the folder's run, the conf's ``document_ids`` for an upload's run). Airflow or PostgreSQL being
down in the middle of a cell only skips polls.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.faults import measure
from rag.adapters.airflow import AirflowClient
from rag.core.errors import RagError
from rag.settings import Settings

log = logging.getLogger(__name__)

INGEST_DAG = "ingest_documents"
SWEEPER_DAG = "ingest_sweeper"
FINISHED = frozenset({"success", "failed"})
POLL_S = 1.0


class AirflowRuns(AirflowClient):
    """The REST calls a fault cell needs beyond triggering a run."""

    @classmethod
    def from_settings(cls, settings: Settings) -> AirflowRuns:
        password = settings.AIRFLOW_PASSWORD.get_secret_value() if settings.AIRFLOW_PASSWORD else None
        return cls(settings.AIRFLOW_API_URL, settings.AIRFLOW_USERNAME, password)

    def runs_of_tenant(self, dag_id: str, tenant: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id`` whose conf mentions ``tenant`` (run id, state, conf)."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns",
                params={"conf_contains": tenant, "limit": 100, "offset": offset, "order_by": "id"},
            ).json()
            runs = page.get("dag_runs", [])
            found += [r for r in runs if (r.get("conf") or {}).get("tenant") == tenant]
            offset += len(runs)
            if not runs or offset >= int(page.get("total_entries", 0)):
                return found

    def running_task_ids(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """Ids of the task instances of ``task_id`` in the run that are running now."""
        page = self._request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"task_id": task_id, "state": "running", "limit": 100},
        ).json()
        return [str(ti["id"]) for ti in page.get("task_instances", [])]


@dataclass
class GreenCheck:
    """A run seen in ``success``, and its documents that were not terminal at that moment."""

    run_id: str
    documents: int
    unfinished: int
    seen_after_s: float  # since the watch started


@dataclass
class RunWatch:
    airflow: AirflowRuns
    settings: Settings
    tenant: str
    folder: Path
    states: dict[str, str] = field(default_factory=dict)
    green: list[GreenCheck] = field(default_factory=list)
    polls_failed: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="faults-runs", daemon=True)
        self._began = time.monotonic()
        self._lock = threading.Lock()

    def start(self) -> RunWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def active(self) -> list[str]:
        """Runs of the tenant not finished yet (queued or running), as last seen."""
        with self._lock:
            return [run for run, state in self.states.items() if state not in FINISHED]

    def green_with_unfinished(self) -> list[GreenCheck]:
        with self._lock:
            return [g for g in self.green if g.unfinished]

    def poll(self) -> None:
        runs = self.airflow.runs_of_tenant(INGEST_DAG, self.tenant)
        for run in runs:
            run_id, state = str(run["dag_run_id"]), str(run["state"])
            with self._lock:
                before = self.states.get(run_id)
                self.states[run_id] = state
            if state == "success" and before != "success":
                self._check_green(run_id, run.get("conf") or {})

    def _check_green(self, run_id: str, conf: dict[str, Any]) -> None:
        ids = [str(i) for i in conf.get("document_ids") or []]
        if conf.get("source"):
            ids += measure.folder_document_ids(self.settings, self.tenant, self.folder)
        unfinished = measure.unfinished(self.settings, ids)
        check = GreenCheck(run_id, len(ids), len(unfinished), time.monotonic() - self._began)
        if unfinished:
            log.warning("run %s reported success with %d unfinished document(s)", run_id, len(unfinished))
        with self._lock:
            self.green.append(check)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except (RagError, OSError, measure.DatabaseError) as exc:
                self.polls_failed += 1
                log.debug("run poll failed: %s", exc)
            self._stop.wait(POLL_S)


def wait_for_running_task(
    airflow: AirflowRuns, run_id: str, task_id: str = "process", *, timeout_s: float = 180.0
) -> list[str]:
    """Ids of the running instances of ``task_id`` in ``run_id``, once there is one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(RagError):
            ids = airflow.running_task_ids(INGEST_DAG, run_id, task_id)
            if ids:
                return ids
        time.sleep(0.5)
    raise TimeoutError(f"no {task_id} task of run {run_id} ran within {timeout_s:.0f} s")


def wait_for_dags(airflow: AirflowRuns, dag_ids: tuple[str, ...], *, timeout_s: float = 180.0) -> None:
    """Until Airflow knows each DAG (a fresh stack parses its DAG files within a minute)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(RagError):
            if set(dag_ids) <= set(airflow.dags()):
                return
        time.sleep(2)
    raise TimeoutError(f"Airflow did not list {', '.join(dag_ids)} within {timeout_s:.0f} s")
