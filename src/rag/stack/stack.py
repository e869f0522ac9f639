"""Bring the whole local stack up, down, or report on it."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rag.stack.components import ALL, Component, StackContext
from rag.stack.components.airflow import Airflow
from rag.stack.components.mlflow import MLflow
from rag.stack.components.objectstore import ObjectStore
from rag.stack.components.postgres import Postgres
from rag.stack.components.redis import Redis
from rag.stack.components.triton import Triton
from rag.stack.config import StackConfig
from rag.stack.process import pss_bytes
from rag.stack.secrets import ensure_secrets, write_env_file

log = logging.getLogger(__name__)

# Components in each wave start in parallel; a wave waits for the one before.
WAVES: tuple[tuple[str, ...], ...] = (
    ("postgres", "redis", "objectstore", "triton"),
    ("mlflow", "airflow"),
    ("api",),
)


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    healthy: bool
    detail: str


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.secrets_path = config.state_dir / "secrets.env"
        self.ctx = StackContext(config=config, secrets=ensure_secrets(self.secrets_path))
        self.components: dict[str, Component] = {
            name: ALL[name](self.ctx) for name in ALL if name in config.components
        }

    @property
    def env_path(self):  # type: ignore[no-untyped-def]
        return self.config.state_dir / "stack.env"

    def up(self) -> list[str]:
        """Start what is not running, repair what is not ready (``Component.start``), provision,
        migrate; return the components (re)started. On a healthy stack it changes nothing."""
        self.config.save()
        started: list[str] = []
        for wave in WAVES:
            names = [n for n in wave if n in self.components]
            with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
                results = list(pool.map(lambda n: (n, self.components[n].start()), names))
            started += [name for name, did_start in results if did_start]
            if wave is WAVES[0]:
                self.write_env()
                if "postgres" in self.components:
                    from rag.migrations import upgrade

                    upgrade(self.app_env()["DATABASE_URL"])
        self.write_env()
        return started

    def watch(self, interval_s: float = 10.0, *, rounds: int | None = None) -> None:
        """Keep the stack converged, like a restart policy: every ``interval_s``, if a component
        is unhealthy, run ``up`` (which restarts or repairs it). ``rounds`` bounds the loop."""
        done = 0
        while rounds is None or done < rounds:
            done += 1
            bad = [row for row in self.status() if not row.healthy]
            if bad:
                log.warning("unhealthy: %s", "; ".join(f"{row.name} ({row.detail})" for row in bad))
                try:
                    started = self.up()
                except (RuntimeError, TimeoutError, OSError) as exc:
                    log.error("repair failed, trying again in %.0fs: %s", interval_s, exc)
                else:
                    log.warning("repaired (restarted: %s)", ", ".join(started) or "none")
            time.sleep(interval_s)

    def down(self) -> list[str]:
        """Stop, in reverse order, only the processes this stack started (by PID file)."""
        stopped = []
        for wave in reversed(WAVES):
            names = [n for n in wave if n in self.components]
            with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
                results = list(pool.map(lambda n: (n, self.components[n].stop()), names))
            stopped += [name for name, did_stop in results if did_stop]
        return stopped

    def status(self) -> list[ComponentStatus]:
        with ThreadPoolExecutor(max_workers=len(self.components)) as pool:
            results = pool.map(lambda c: (c.name, *c.status()), self.components.values())
        return [ComponentStatus(name, healthy, detail) for name, healthy, detail in results]

    def memory(self) -> dict[str, int]:
        """PSS in bytes per running component (its whole process tree)."""
        usage = {}
        for name, component in self.components.items():
            pid = component.running_pid()
            if pid is not None:
                usage[name] = pss_bytes(pid)
        return usage

    def destroy(self) -> None:
        """Stop everything and delete the state directory (data, logs, secrets)."""
        self.down()
        shutil.rmtree(self.config.state_dir, ignore_errors=True)

    # -- the environment for RAG System's own processes ------------------------------------
    def app_env(self) -> dict[str, str]:
        """Settings (deployment-guide names) that point RAG System's processes at this stack."""
        cfg, s = self.config, self.ctx.secrets
        env = {
            "DATABASE_URL": Postgres(self.ctx).database_url("rag"),
            "REDIS_URL": Redis(self.ctx).url(),
            "S3_ENDPOINT_URL": ObjectStore(self.ctx).endpoint_url,
            "S3_ACCESS_KEY_ID": s["S3_ACCESS_KEY_ID"],
            "S3_SECRET_ACCESS_KEY": s["S3_SECRET_ACCESS_KEY"],
            "SECRET_KEY": s["SECRET_KEY"],
            "JWT_SECRET_KEY": s["JWT_SECRET_KEY"],
            "HF_CACHE_DIR": str(cfg.model_cache_dir),
            "ENABLE_GPU": "true" if cfg.enable_gpu else "false",
            "LOG_LEVEL": "INFO",
            "PROMETHEUS_ENABLED": "true",
            "MLFLOW_ENABLED": "true",
            "TRITON_GRPC_URL": f"{cfg.host}:{cfg.ports.triton_grpc}",
            "TRITON_HTTP_URL": Triton(self.ctx).http_url,
            "TRITON_MODEL_REPOSITORY": str(cfg.model_repository),
            "MLFLOW_TRACKING_URI": MLflow(self.ctx).url,
            "AIRFLOW_API_URL": Airflow(self.ctx).url,
            "AIRFLOW_USERNAME": "admin",
            "AIRFLOW_PASSWORD": s["AIRFLOW_ADMIN_PASSWORD"],
            "GRPC_PORT": str(cfg.ports.grpc),
            "METRICS_PORT": str(cfg.ports.metrics),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        return env

    def write_env(self) -> None:
        write_env_file(
            self.env_path,
            self.app_env(),
            "RAG System settings for the local stack (generated by `make up`; holds secrets).",
        )

    def endpoints(self) -> Iterable[tuple[str, str]]:
        cfg = self.config
        yield "PostgreSQL (rag db)", f"postgresql://rag@{cfg.host}:{cfg.ports.postgres}/rag"
        yield "Redis", f"redis://{cfg.host}:{cfg.ports.redis}/0"
        yield "S3 (SeaweedFS)", ObjectStore(self.ctx).endpoint_url
        yield "MLflow UI", MLflow(self.ctx).url
        yield "Triton gRPC / HTTP", f"{cfg.host}:{cfg.ports.triton_grpc} / {Triton(self.ctx).http_url}"
        yield "Triton metrics", f"http://{cfg.host}:{cfg.ports.triton_metrics}/metrics"
        yield "Airflow UI", f"{Airflow(self.ctx).url}  (user admin, password in {self.secrets_path})"
        yield (
            "gRPC API",
            f"{cfg.host}:{cfg.ports.grpc}  (metrics http://{cfg.host}:{cfg.ports.metrics}/metrics)",
        )
