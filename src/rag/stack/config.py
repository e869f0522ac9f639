"""Where the local stack lives and which ports it uses."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.models.triton_args import VERSION_WEIGHTS

REPO_ROOT = Path(__file__).resolve().parents[3]


class Ports(BaseModel):
    """One port per listening endpoint. SeaweedFS uses ``s3`` and the ten ports after it."""

    postgres: int = Field(25432, ge=1, le=65535)
    redis: int = Field(26379, ge=1, le=65535)
    s3: int = Field(28333, ge=1, le=65524)
    mlflow: int = Field(25000, ge=1, le=65535)
    triton_http: int = Field(28000, ge=1, le=65535)
    triton_grpc: int = Field(28001, ge=1, le=65535)
    triton_metrics: int = Field(28002, ge=1, le=65535)
    airflow: int = Field(28080, ge=1, le=65535)
    grpc: int = Field(28051, ge=1, le=65535)
    metrics: int = Field(29464, ge=1, le=65535)

    def seaweed(self) -> dict[str, int]:
        """SeaweedFS mini opens many listeners; pin every one of them next to the S3 port."""
        base = self.s3
        return {
            "s3.port.grpc": base + 1,
            "master.port": base + 2,
            "master.port.grpc": base + 3,
            "volume.port": base + 4,
            "volume.port.grpc": base + 5,
            "filer.port": base + 6,
            "filer.port.grpc": base + 7,
            "admin.port": base + 8,
            "admin.port.grpc": base + 9,
            # Prometheus /metrics of every SeaweedFS server in the process (scraped by infra/prometheus).
            "metricsPort": base + 10,
        }

    def all_ports(self) -> dict[str, int]:
        ports = {name: int(value) for name, value in self.model_dump().items()}
        ports.update({f"seaweedfs {k}": v for k, v in self.seaweed().items()})
        return ports


class StackConfig(BaseSettings):
    """The local stack's configuration, from ``RAG_*`` variables (e.g. ``RAG_PORTS__POSTGRES``)."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="ignore")

    state_dir: Path = REPO_ROOT / ".rag"
    host: str = "127.0.0.1"
    ports: Ports = Ports()
    repo_root: Path = REPO_ROOT
    # Templates and model.py files (in git); the stack renders them into its own repository
    # under the state directory, where promotions also add versions.
    triton_model_repository: Path = REPO_ROOT / "triton_models"
    # Models loaded at `up`; the reranker joins when a cross-encoder folder is configured or a
    # reranker was promoted into the stack's repository (a version folder with weights).
    triton_models: tuple[str, ...] = ("embedder", "generator")
    reranker_model_path: Path | None = None
    # Shared by every stack on this machine: converted generator weights (content-addressed).
    model_cache_dir: Path = REPO_ROOT / ".rag" / "model_cache"
    dags_folder: Path = REPO_ROOT / "dags"
    plugins_folder: Path = REPO_ROOT / "plugins"
    enable_gpu: bool = False
    # Components to run; tests may start a subset.
    components: tuple[str, ...] = ("postgres", "redis", "objectstore", "mlflow", "triton", "airflow", "api")
    # CPU priority (nice) of the batch and inference processes: Triton, Airflow (its tasks and
    # parser workers inherit it) and MLflow. On one machine the CPU generator or a parse can take
    # every core; below the API they cannot delay its RPCs and health checks, as CPU requests
    # would guarantee the API in Kubernetes. 0 runs everything at the same priority.
    batch_nice: int = Field(default=5, ge=0, le=19)
    # PostgreSQL refuses to run as root: the stack runs it as this system user when root.
    service_user: str = "ragstack"

    @property
    def model_repository(self) -> Path:
        return self.state_dir / "model_repository"

    def models_to_load(self) -> tuple[str, ...]:
        wanted = self.reranker_model_path is not None or self._promoted("reranker")
        extra = ("reranker",) if wanted and "reranker" not in self.triton_models else ()
        return (*self.triton_models, *extra)

    def _promoted(self, model: str) -> bool:
        """A version exported by a promotion (``<n>/weights``) is in the stack's repository."""
        folder = self.model_repository / model
        return folder.is_dir() and any(
            p.name.isdigit() and (p / VERSION_WEIGHTS).is_dir() for p in folder.iterdir() if p.is_dir()
        )

    @property
    def config_file(self) -> Path:
        return self.state_dir / "stack.json"

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, state_dir: Path | None = None) -> StackConfig:
        """The configuration the stack in ``state_dir`` was started with, else the environment's."""
        fresh = cls() if state_dir is None else cls(state_dir=state_dir)
        if fresh.config_file.exists():
            return cls.model_validate(json.loads(fresh.config_file.read_text()))
        return fresh
