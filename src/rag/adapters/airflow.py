"""Airflow's REST API (v2): trigger DAG runs and read their state, as the UI does."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from rag.core.errors import ConfigurationError, InvalidInput, NotFound, Unavailable


class AirflowClient:
    """Thread-safe; one per process. Tokens from ``/auth/token`` are reused until near expiry."""

    def __init__(
        self, base_url: str, username: str, password: str | None, *, timeout_s: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def _auth_header(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or time.monotonic() > self._token_expires:
                if not self.password:
                    raise ConfigurationError("AIRFLOW_PASSWORD is not set: the Airflow API needs a login")
                try:
                    response = self._http.post(
                        "/auth/token", json={"username": self.username, "password": self.password}
                    )
                except httpx.HTTPError as exc:
                    raise Unavailable(f"Airflow is unreachable at {self.base_url} ({exc})") from None
                if response.status_code in (401, 403):
                    raise ConfigurationError(
                        "Airflow refused the login: check AIRFLOW_USERNAME/AIRFLOW_PASSWORD"
                    )
                if response.status_code >= 400:
                    raise Unavailable(f"Airflow login failed: HTTP {response.status_code}")
                self._token = str(response.json()["access_token"])
                self._token_expires = time.monotonic() + 20 * 60  # Airflow's default lifetime is 24 h
            return {"Authorization": f"Bearer {self._token}"}

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=self._auth_header(), **kwargs)
            if response.status_code == 401:  # token expired early: log in again once
                with self._lock:
                    self._token = None
                response = self._http.request(method, path, headers=self._auth_header(), **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"Airflow is unreachable at {self.base_url} ({exc})") from None
        if response.status_code == 404:
            raise NotFound(f"Airflow has no {path}")
        if response.status_code in (400, 422):
            raise InvalidInput(f"Airflow rejected the request: {response.text[:500]}")
        if response.status_code >= 400:
            raise Unavailable(f"Airflow answered HTTP {response.status_code}: {response.text[:200]}")
        return response

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """Start a run of ``dag_id`` with ``conf`` (validated by the DAG's params); its run id."""
        response = self._request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )
        return str(response.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"])

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v2/importErrors").json().get("import_errors", []))

    def dags(self) -> list[str]:
        return [
            d["dag_id"] for d in self._request("GET", "/api/v2/dags", params={"limit": 100}).json()["dags"]
        ]
