"""Apache Airflow 3: api-server, scheduler, dag-processor and triggerer under one supervisor.

Not ``airflow standalone``: its log servers bind every interface, and the stack binds 127.0.0.1
only. With the LocalExecutor, task logs are files the api-server reads directly.

Metadata lives in the stack's PostgreSQL (own database); LocalExecutor with parallelism 4; the
repository's ``dags/`` and ``plugins/``; the simple auth manager with a generated password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from rag.stack.components.base import Component
from rag.stack.components.postgres import Postgres
from rag.stack.secrets import read_env_file
from rag.stack.supervise import SEPARATOR

HEALTHY_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
# The supervisor's four children, by a word of their command line (the api-server renames itself
# "airflow api_server -- ...").
PROCESSES = {
    "api-server": ("api-server", "api_server"),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer",),
}


def child_commands(pid: int) -> dict[int, str]:
    """PID -> command line of each direct child of ``pid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) != pid:
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found


class Airflow(Component):
    name = "airflow"
    startup_timeout = 240.0  # its api-server took over 120 s at load 15 on 2 cores
    batch = True
    stop_timeout = 45.0
    stop_group = False  # the supervisor stops the four parts; LocalExecutor workers follow them
    repair_grace = 30.0  # the scheduler's heartbeat resumes once the metadata database is back

    @property
    def home(self) -> Path:
        return self.ctx.config.state_dir / "airflow"

    @property
    def url(self) -> str:
        return f"http://{self.ctx.host}:{self.ctx.config.ports.airflow}"

    def ports(self) -> dict[str, int]:
        return {"airflow": self.ctx.config.ports.airflow}

    def airflow_env(self) -> dict[str, str]:
        """The AIRFLOW_* variables; also what `airflow` CLI calls against this stack need."""
        pg = Postgres(self.ctx)
        cfg = self.ctx.config
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg.database_url("airflow", driver="postgresql+psycopg"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": pg.database_url(
                "airflow", driver="postgresql+psycopg_async"
            ),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(cfg.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(cfg.plugins_folder),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": self.ctx.secrets["AIRFLOW_FERNET_KEY"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__HOST": self.ctx.host,
            "AIRFLOW__API__PORT": str(cfg.ports.airflow),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__SECRET_KEY": self.ctx.secrets["AIRFLOW_API_SECRET_KEY"],
            "AIRFLOW__API_AUTH__JWT_SECRET": self.ctx.secrets["AIRFLOW_JWT_SECRET"],
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            **self.connections_env(),
        }

    def connections_env(self) -> dict[str, str]:
        """Airflow connections of the stack: ``rag_postgres_admin``, the superuser that the
        restore DAG needs to create databases and extensions (only Airflow gets it)."""
        cfg = self.ctx.config
        admin = {
            "conn_type": "postgres",
            "host": self.ctx.host,
            "port": cfg.ports.postgres,
            "login": "postgres",
            "password": self.ctx.secrets["POSTGRES_SUPERUSER_PASSWORD"],
            "schema": "postgres",
        }
        return {"AIRFLOW_CONN_RAG_POSTGRES_ADMIN": json.dumps(admin)}

    def env(self) -> dict[str, str]:
        """Airflow's own settings plus RAG System's (tasks build their clients from them)."""
        env = super().env()
        env.update(read_env_file(self.ctx.config.state_dir / "stack.env"))
        env.update(self.airflow_env())
        return env

    def _write_passwords(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / "passwords.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"admin": self.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"]}, handle)

    def prepare(self) -> None:
        self._write_passwords()
        result = subprocess.run(
            [str(self.ctx.venv_bin / "airflow"), "db", "migrate"],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise RuntimeError(f"airflow db migrate failed:\n{tail}")

    def command(self) -> list[str]:
        airflow = str(self.ctx.venv_bin / "airflow")
        parts = [
            [airflow, "api-server", "--host", self.ctx.host, "--port", str(self.ctx.config.ports.airflow)],
            [airflow, "scheduler", "--skip-serve-logs"],
            [airflow, "dag-processor"],
            [airflow, "triggerer", "--skip-serve-logs"],
        ]
        argv = [sys.executable, "-m", "rag.stack.supervise"]
        for index, part in enumerate(parts):
            argv += ([SEPARATOR] if index else []) + part
        return argv

    def processes(self) -> dict[str, int]:
        """Each of the four parts that runs now -> its PID."""
        pid = self.running_pid()
        children = child_commands(pid) if pid is not None else {}
        running = {}
        for part, words in PROCESSES.items():
            for child, argv in children.items():
                if any(word in argv.split() for word in words):
                    running[part] = child
        return running

    def check(self) -> str:
        """Every part runs (the health endpoint lags a dead scheduler by its heartbeat threshold)
        and Airflow's health endpoint reports each healthy."""
        missing = [part for part in PROCESSES if part not in self.processes()]
        if missing:
            raise RuntimeError(f"not running: {', '.join(missing)}")
        response = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        response.raise_for_status()
        health = response.json()
        bad = [part for part in HEALTHY_PARTS if health.get(part, {}).get("status") != "healthy"]
        if bad:
            raise RuntimeError(f"unhealthy: {', '.join(bad)}")
        return f"Airflow at {self.url} (user admin)"

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/auth/token",
            json={"username": "admin", "password": self.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"]},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])
