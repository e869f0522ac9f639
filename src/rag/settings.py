"""Typed settings, read once from the environment at a process's edge.

Names follow the deployment guide (``DATABASE_URL``, ``REDIS_URL``, ``JWT_SECRET_KEY``, ...).
Each entry point calls :func:`load_settings` in its ``main()`` and passes the object down; the
core never reads ``os.environ``. A missing or malformed variable becomes one
:class:`~rag.core.errors.ConfigurationError` line that names the variable and the fix.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    Field,
    FilePath,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from rag.core.errors import ConfigurationError
from rag.parsing.limits import ParseLimits


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


# The checkout this package runs from (its samples/ and the local stack's .rag/).
_CHECKOUT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Every setting RAG System reads. Field names are the environment variable names."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # State
    DATABASE_URL: str = Field(description="PostgreSQL URL of the RAG database (postgresql://...)")
    DATABASE_POOL_SIZE: int = Field(20, ge=1, le=1000)
    DATABASE_POOL_MAX_OVERFLOW: int = Field(30, ge=0, le=1000)
    DATABASE_POOL_TIMEOUT: float = Field(30.0, gt=0)
    DATABASE_POOL_RECYCLE: float = Field(3600.0, gt=0)
    DATABASE_STATEMENT_TIMEOUT_MS: int = Field(30_000, ge=0)
    REDIS_URL: str = Field(description="Redis URL of the cache (redis://...)")

    # Object storage (S3-compatible)
    S3_ENDPOINT_URL: str = Field(description="S3 endpoint, e.g. http://127.0.0.1:28333")
    S3_ACCESS_KEY_ID: str
    S3_SECRET_ACCESS_KEY: SecretStr
    S3_REGION: str = "us-east-1"
    S3_BUCKET_DOCUMENTS: str = "rag-documents"
    S3_BUCKET_BACKUPS: str = "rag-backups"
    S3_BUCKET_MODELS: str = "rag-models"

    # Secrets
    SECRET_KEY: SecretStr = Field(description="Key for signing internal data (webhooks, ...)")
    JWT_SECRET_KEY: SecretStr = Field(description="HS256 key for access and refresh tokens")
    JWT_ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(30, ge=1, le=24 * 60)
    JWT_REFRESH_TOKEN_EXPIRE_DAYS: int = Field(7, ge=1, le=90)
    JWT_ISSUER: str = Field("rag-system", min_length=1)
    JWT_AUDIENCE: str = Field("rag-users", min_length=1)

    # gRPC API (grpc_services)
    GRPC_HOST: str = "127.0.0.1"
    GRPC_PORT: int = Field(50051, ge=0, le=65535)
    # Largest single message either way; uploads stream in chunks below it.
    GRPC_MAX_MESSAGE_BYTES: int = Field(8 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    GRPC_GRACE_PERIOD_S: float = Field(10.0, ge=0)
    # Server certificate and key (PEM); both set: TLS, neither: plaintext (behind a TLS proxy).
    GRPC_TLS_CERT_FILE: FilePath | None = None
    GRPC_TLS_KEY_FILE: FilePath | None = None
    # Uploads stream to S3 in parts (S3 copies the staged object to its content address: at most
    # 5 GiB). Memory per upload is about one part; more concurrent uploads: RESOURCE_EXHAUSTED;
    # an upload whose client sends nothing for the idle timeout is DEADLINE_EXCEEDED.
    UPLOAD_MAX_BYTES: int = Field(100 * 1024 * 1024, ge=1, le=5 * 2**30)
    UPLOAD_PART_BYTES: int = Field(8 * 2**20, ge=5 * 2**20, le=512 * 2**20)
    UPLOAD_MAX_CONCURRENT: int = Field(8, ge=1, le=10_000)
    UPLOAD_IDLE_TIMEOUT_S: float = Field(60.0, gt=0)
    # Per principal (or per client address before login): sustained rate and burst.
    RATE_LIMIT_PER_SECOND: float = Field(100.0, gt=0)
    RATE_LIMIT_BURST: int = Field(100, ge=1)
    # Proxies (comma-separated CIDRs) whose X-Forwarded-For or X-Real-IP names the client;
    # empty (default): every caller's address is its peer address.
    TRUSTED_PROXIES: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = ()
    # Admission control: calls in progress at once per RPC class in this process; one more is
    # RESOURCE_EXHAUSTED at once with "retry in OVERLOAD_RETRY_AFTER_S s" (uploads: above).
    # Search: about one per core (bench.overload: on 2 cores p50 grows past 2 at once).
    SEARCH_MAX_CONCURRENT: int = Field(8, ge=1, le=10_000)
    GENERATE_MAX_CONCURRENT: int = Field(2, ge=1, le=10_000)
    DOCUMENTS_MAX_CONCURRENT: int = Field(16, ge=1, le=10_000)
    ADMIN_MAX_CONCURRENT: int = Field(2, ge=1, le=10_000)
    AUTH_MAX_CONCURRENT: int = Field(8, ge=1, le=10_000)
    OVERLOAD_RETRY_AFTER_S: float = Field(1.0, gt=0, le=3600)
    # Login attempts per minute and burst, per username (failed ones) and per client address.
    LOGIN_PER_USERNAME_PER_MINUTE: float = Field(5.0, gt=0)
    LOGIN_PER_USERNAME_BURST: int = Field(10, ge=1)
    LOGIN_PER_ADDRESS_PER_MINUTE: float = Field(60.0, gt=0)
    LOGIN_PER_ADDRESS_BURST: int = Field(30, ge=1)
    # Password hashing (argon2, 64 MiB each) runs on its own threads; more waiting: refused.
    PASSWORD_HASH_THREADS: int = Field(2, ge=1, le=64)
    PASSWORD_HASH_MAX_WAITING: int = Field(32, ge=0, le=10_000)
    METRICS_HOST: str = "127.0.0.1"
    METRICS_PORT: int = Field(9464, ge=0, le=65535)

    # Models and inference
    HF_CACHE_DIR: Path = Path(".rag/model_cache")
    MAX_MEMORY_GB: float = Field(16.0, gt=0)
    ENABLE_GPU: bool = False
    TRITON_GRPC_URL: str = "127.0.0.1:28001"
    TRITON_HTTP_URL: str = "http://127.0.0.1:28000"
    TRITON_MODEL_REPOSITORY: Path = Path("triton_models")
    TRITON_TIMEOUT_S: float = Field(30.0, gt=0)
    # Fused candidates the reranker reorders per search (the rest follow in fused order); the
    # trainings judge a reranker at the same depth. See the README's "Learned relevance".
    RERANK_DEPTH: int = Field(30, ge=1, le=100)
    # Whether a search that does not say reranks when a reranker serves. Off by default because
    # of what it measured on CPU: a MiniLM cross-encoder at depth 30 makes a search ~38x slower
    # (1.9 s at p50; README, "Learned relevance"). Turn it on with GPU instances (ENABLE_GPU).
    RERANK_BY_DEFAULT: bool = False
    # The support (a calibrated probability) an answer sentence needs from its best source
    # sentence to count as supported; below it the sentence is flagged, or dropped when the
    # request is strict. Chosen by `python -m bench.support` on SciFact train claims: the highest
    # bar at which flagged sentences are unsupported with precision >= 0.92 on the fitting folds.
    GROUNDING_SUPPORT_THRESHOLD: float = Field(0.17, ge=0.0, le=1.0)
    # How many source sentences an extractive answer (no generated sentence supported) quotes.
    GROUNDING_EXTRACTIVE_SENTENCES: int = Field(2, ge=1, le=10)

    # MLflow and Airflow
    MLFLOW_ENABLED: bool = True
    MLFLOW_TRACKING_URI: str = "http://127.0.0.1:25000"
    AIRFLOW_API_URL: str = "http://127.0.0.1:28080"
    AIRFLOW_USERNAME: str = "admin"
    AIRFLOW_PASSWORD: SecretStr | None = None

    # Operations
    LOG_LEVEL: LogLevel = LogLevel.INFO
    PROMETHEUS_ENABLED: bool = True

    # Batch ingestion (the ingest_documents DAG's ``source``), comma-separated lists: local
    # folders it may read (empty: no local paths) and buckets it may read (empty: none).
    INGEST_ALLOWED_ROOTS: Annotated[tuple[Path, ...], NoDecode] = (_CHECKOUT / "samples",)
    INGEST_ALLOWED_BUCKETS: Annotated[tuple[str, ...], NoDecode] = ()
    # The local stack's state directory (secrets, data): never ingested, whatever the roots.
    RAG_STATE_DIR: Path = _CHECKOUT / ".rag"

    # Parsing (ingestion tasks parse each document in a worker process): the worker's address
    # space, CPU seconds and wall-clock seconds per document, and the most extracted characters,
    # PDF pages and chunks a document may have. Past one: quarantined with the limit's name.
    PARSE_MAX_MEMORY_MB: int = Field(ParseLimits.max_memory_mb, ge=128, le=1024 * 1024)
    PARSE_MAX_CPU_S: int = Field(ParseLimits.max_cpu_s, ge=1)
    PARSE_TIMEOUT_S: float = Field(ParseLimits.timeout_s, gt=0)
    PARSE_MAX_CHARS: int = Field(ParseLimits.max_chars, ge=1)
    PARSE_MAX_PAGES: int = Field(ParseLimits.max_pages, ge=1)
    PARSE_MAX_CHUNKS: int = Field(ParseLimits.max_chunks, ge=1)

    @field_validator("INGEST_ALLOWED_ROOTS", "INGEST_ALLOWED_BUCKETS", "TRUSTED_PROXIES", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("INGEST_ALLOWED_ROOTS")
    @classmethod
    def _absolute_roots(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        relative = [str(p) for p in value if not p.expanduser().is_absolute()]
        if relative:
            raise ValueError(f"must list absolute folders ({', '.join(relative)} is relative)")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.GRPC_TLS_CERT_FILE is None) != (self.GRPC_TLS_KEY_FILE is None):
            raise ValueError("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE must be set together (or neither)")
        return self

    @field_validator("DATABASE_URL")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
            raise ValueError("must start with postgresql:// (e.g. postgresql://user:pw@host:5432/db)")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("must name a host and a database (postgresql://user:pw@host:5432/db)")
        return value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must start with redis:// or rediss:// (e.g. redis://127.0.0.1:6379/0)")
        return value

    @field_validator("S3_ENDPOINT_URL", "MLFLOW_TRACKING_URI", "AIRFLOW_API_URL", "TRITON_HTTP_URL")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in {"http", "https"} or not urlsplit(value).hostname:
            raise ValueError("must be an http(s) URL with a host, e.g. http://127.0.0.1:8000")
        return value.rstrip("/")

    @field_validator("JWT_SECRET_KEY", "SECRET_KEY")
    @classmethod
    def _strong_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (generate one: openssl rand -hex 32)")
        return value


class _ExplicitSettings(Settings):
    """Settings from an explicit mapping only: the process environment is not consulted."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``environ`` (default: the process environment).

    Raises :class:`ConfigurationError` whose message names every bad variable and its fix.
    """
    try:
        if environ is None:
            return Settings()  # values come from the environment
        known = {k: v for k, v in environ.items() if k in Settings.model_fields}
        return _ExplicitSettings.model_validate(known)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            if error["type"] == "missing":
                problems.append(f"{name} is not set (see .env.example, or run `make up`)")
            else:
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(f"{name} {message}")
        raise ConfigurationError("; ".join(problems)) from None
