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
from urllib.parse import urlsplit

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rag.core.errors import ConfigurationError


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


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
    UPLOAD_MAX_BYTES: int = Field(100 * 1024 * 1024, ge=1)
    # Per principal (or per client address before login): sustained rate and burst.
    RATE_LIMIT_PER_SECOND: float = Field(100.0, gt=0)
    RATE_LIMIT_BURST: int = Field(100, ge=1)
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

    # MLflow and Airflow
    MLFLOW_ENABLED: bool = True
    MLFLOW_TRACKING_URI: str = "http://127.0.0.1:25000"
    AIRFLOW_API_URL: str = "http://127.0.0.1:28080"
    AIRFLOW_USERNAME: str = "admin"
    AIRFLOW_PASSWORD: SecretStr | None = None

    # Operations
    LOG_LEVEL: LogLevel = LogLevel.INFO
    PROMETHEUS_ENABLED: bool = True

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
