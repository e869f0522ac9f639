"""Health of every service RAG System depends on, one check per service, each with a deadline.

A check returns a :class:`Health`; it never raises for an unhealthy service (the caller decides
what failing means). A service that is not configured here is *skipped* with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rag.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
SERVICES = ("postgres", "redis", "object_storage", "triton", "mlflow", "grpc_api")
# Triton models the services cannot work without (the reranker is optional).
REQUIRED_MODELS = ("embedder", "generator")


@dataclass(frozen=True)
class Health:
    service: str
    healthy: bool
    detail: str
    seconds: float = 0.0
    skipped: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "healthy": self.healthy,
            "skipped": self.skipped,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
        }


def _postgres(settings: Settings, **_: Any) -> tuple[bool, str]:
    from rag import migrations
    from rag.adapters.postgres.health import server_versions

    versions = server_versions(settings.DATABASE_URL, TIMEOUT_S)
    server, vector, revision = versions.server, versions.vector, versions.schema_revision
    head = migrations.head()
    detail = f"PostgreSQL {server}, pgvector {vector}, schema {revision}"
    if vector is None:
        return False, detail + ": the vector extension is missing"
    if revision != head:
        return False, detail + f": not at the migrations' head {head} (run the migrations)"
    return True, detail


def _redis(settings: Settings, **_: Any) -> tuple[bool, str]:
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
    )
    try:
        client.ping()
        info = client.info("memory")
    finally:
        client.close()
    return True, f"PING ok, used memory {info.get('used_memory_human', '?')}"


def _object_storage(settings: Settings, **_: Any) -> tuple[bool, str]:
    from rag.adapters.objectstore import BlobStore

    blobs = BlobStore(settings, read_timeout=TIMEOUT_S)
    buckets = (settings.S3_BUCKET_DOCUMENTS, settings.S3_BUCKET_BACKUPS, settings.S3_BUCKET_MODELS)
    missing = [b for b in buckets if not blobs.ready(b)]
    if missing:
        return False, f"{settings.S3_ENDPOINT_URL}: buckets not reachable: {', '.join(missing)}"
    return True, f"{settings.S3_ENDPOINT_URL}: buckets {', '.join(buckets)} reachable"


def _triton(settings: Settings, *, models: Sequence[str] = REQUIRED_MODELS, **_: Any) -> tuple[bool, str]:
    from rag.adapters.triton import BlockingTriton, TritonOptions

    with BlockingTriton(
        TritonOptions(settings.TRITON_GRPC_URL, timeout_s=TIMEOUT_S, max_retries=1)
    ) as triton:
        ready = {model: triton.model_ready(model) for model in models}
        states = {
            str(m.get("name")): f"{m.get('version', '?')}:{m.get('state', '?')}"
            for m in triton.repository_index()
        }
    not_ready = [m for m, ok in ready.items() if not ok]
    detail = f"{settings.TRITON_GRPC_URL}: " + ", ".join(f"{n} {s}" for n, s in sorted(states.items()))
    if not_ready:
        return False, detail + f"; not ready: {', '.join(not_ready)}"
    return True, detail


def _mlflow(settings: Settings, **_: Any) -> tuple[bool, str] | None:
    import httpx

    if not settings.MLFLOW_ENABLED:
        return None
    url = f"{settings.MLFLOW_TRACKING_URI.rstrip('/')}/health"
    if not url.startswith(("http://", "https://")):
        return None
    response = httpx.get(url, timeout=TIMEOUT_S)
    return response.status_code == 200, f"GET {url}: {response.status_code} {response.text.strip()[:80]}"


def _grpc_api(settings: Settings, **_: Any) -> tuple[bool, str] | None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if "GRPC_PORT" not in settings.model_fields_set:
        return None  # no endpoint configured for this deployment
    host = "127.0.0.1" if settings.GRPC_HOST in {"0.0.0.0", "::", ""} else settings.GRPC_HOST  # noqa: S104
    target = f"{host}:{settings.GRPC_PORT}"
    if settings.GRPC_TLS_CERT_FILE is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=settings.GRPC_TLS_CERT_FILE.read_bytes())
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
        )
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, f"grpc.health.v1 at {target}: {status}"


_CHECKS: dict[str, Callable[..., tuple[bool, str] | None]] = {
    "postgres": _postgres,
    "redis": _redis,
    "object_storage": _object_storage,
    "triton": _triton,
    "mlflow": _mlflow,
    "grpc_api": _grpc_api,
}


def check_service(service: str, settings: Settings, **options: Any) -> Health:
    """Check one of :data:`SERVICES`; a connection error is an unhealthy result with its reason."""
    check = _CHECKS.get(service)
    if check is None:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    began = time.monotonic()
    try:
        result = check(settings, **options)
    except Exception as exc:  # whatever the client raises, it means "not healthy"
        return Health(service, False, f"{type(exc).__name__}: {exc}", time.monotonic() - began)
    if result is None:
        return Health(service, True, f"{service} is not configured here: skipped", skipped=True)
    healthy, detail = result
    return Health(service, healthy, detail, time.monotonic() - began)
