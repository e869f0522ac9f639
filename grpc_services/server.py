"""The server recipe: ``build_server`` for tests and ``serve``/``main`` for ``python -m grpc_services``.

Interceptors, outermost first: request id -> telemetry (access log, metrics) -> error mapping
-> auth -> rate limit -> admission control (calls in progress per RPC class) -> request
validation (``grpc_services.validation``) -> servicer. Health
(``grpc.health.v1``) stays NOT_SERVING until the readiness check passes; reflection lists every
registered service. SIGTERM (or SIGINT) sets NOT_SERVING, then in-flight calls get
``GRPC_GRACE_PERIOD_S`` to finish.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, CollectorRegistry

from grpc_services.gc_pauses import GcPauses
from grpc_services.health import Dependencies, HealthMonitor, Readiness, always_ready
from grpc_services.interceptors.admission import AdmissionInterceptor, admission_slots, check_classified
from grpc_services.interceptors.auth import AuthInterceptor
from grpc_services.interceptors.errors import ErrorMappingInterceptor
from grpc_services.interceptors.rate_limit import ClientAddresses, RateLimitInterceptor, TokenBuckets
from grpc_services.interceptors.request_id import RequestIdInterceptor
from grpc_services.interceptors.telemetry import TelemetryInterceptor
from grpc_services.interceptors.validation import ValidationInterceptor
from grpc_services.logs import configure_logging
from grpc_services.loop_lag import LoopLag
from grpc_services.metrics import GrpcMetrics, MetricsHttpServer, metrics_app
from grpc_services.permissions import check_covered
from rag.core.authentication import AccessTokens, TokenCodec, TokenVersions
from rag.core.errors import ConfigurationError, RagError
from rag.settings import Settings, load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceBinding:
    """How a servicer instance is added to a server."""

    name: str  # e.g. "rag.v1.SearchService"
    methods: tuple[str, ...]  # full method names, e.g. "/rag.v1.SearchService/Search"
    add: Callable[[Any, grpc.aio.Server], None]


def binding_for(servicer: object) -> ServiceBinding:
    """Find the generated ``XServiceServicer`` base of ``servicer`` and its service descriptor.

    Raises ``TypeError`` for an object that is not a generated servicer, or whose overriding
    methods are not ``async`` (a blocking method would stall the event loop).
    """
    for cls in type(servicer).__mro__:
        if not (cls.__module__.endswith("_pb2_grpc") and cls.__name__.endswith("Servicer")):
            continue
        grpc_module = sys.modules[cls.__module__]
        messages_module = importlib.import_module(cls.__module__.removesuffix("_grpc"))
        add = getattr(grpc_module, f"add_{cls.__name__}_to_server", None)
        service = messages_module.DESCRIPTOR.services_by_name.get(cls.__name__.removesuffix("Servicer"))
        if add is None or service is None:
            continue
        for method in service.methods:
            implementation = getattr(type(servicer), method.name)
            overridden = implementation is not getattr(cls, method.name)
            if overridden and not (
                inspect.iscoroutinefunction(implementation) or inspect.isasyncgenfunction(implementation)
            ):
                raise TypeError(f"{type(servicer).__name__}.{method.name} must be `async def`")
        methods = tuple(f"/{service.full_name}/{m.name}" for m in service.methods)
        return ServiceBinding(service.full_name, methods, add)
    raise TypeError(f"{type(servicer).__name__} is not a subclass of a generated *Servicer class")


class RagServer:
    """A built gRPC server with its health monitor and metrics endpoint; ``start`` and ``stop``."""

    def __init__(
        self,
        server: grpc.aio.Server,
        *,
        port: int,
        tls: bool,
        health: HealthMonitor,
        metrics: GrpcMetrics,
        metrics_address: tuple[str, int] | None,
        admission: AdmissionInterceptor,
    ) -> None:
        self.grpc_server = server
        self.port = port
        self.tls = tls
        self.health = health
        self.metrics = metrics
        self.admission = admission
        self._metrics_address = metrics_address
        self._metrics_http: MetricsHttpServer | None = None
        self.gc_pauses = GcPauses(metrics.gc_pause)
        self.loop_lag = LoopLag(metrics.loop_lag, describe=self.gc_pauses.describe)

    @property
    def metrics_port(self) -> int | None:
        """The bound metrics port once started; ``None`` when metrics are not served."""
        return self._metrics_http.port if self._metrics_http else None

    async def start(self) -> None:
        await self.health.start()  # NOT_SERVING before the first call can arrive
        await self.gc_pauses.start()  # the application is built: freeze what it imported
        await self.loop_lag.start()
        await self.grpc_server.start()
        if self._metrics_address is not None:
            host, port = self._metrics_address
            app = metrics_app(self.metrics.registry, lambda: self.health.ready)
            try:
                self._metrics_http = MetricsHttpServer(app, host, port)
            except OSError as exc:
                await self.stop(0)
                raise ConfigurationError(
                    f"METRICS_PORT {port} on {host} cannot be bound ({exc.strerror}); choose another port"
                ) from None
            self._metrics_http.start()

    async def stop(self, grace: float | None) -> None:
        """NOT_SERVING first, then stop accepting calls and give in-flight ones ``grace`` seconds."""
        await self.health.shutdown()
        await self.grpc_server.stop(grace)
        if self._metrics_http is not None:
            self._metrics_http.stop()
            self._metrics_http = None
        await self.loop_lag.stop()
        await self.gc_pauses.stop()

    async def wait_for_termination(self) -> None:
        await self.grpc_server.wait_for_termination()


def build_server(
    settings: Settings,
    servicers: Sequence[object],
    *,
    tokens: TokenCodec | None = None,
    token_versions: TokenVersions | None = None,
    readiness: Readiness | Dependencies | None = None,
    registry: CollectorRegistry | None = None,
    host: str | None = None,
    port: int | None = None,
    metrics_port: int | None = None,
    readiness_interval_s: float = 2.0,
) -> RagServer:
    """A server (not started) serving ``servicers``, instances of generated ``*Servicer`` classes.

    Call it inside the event loop that will run the server. ``tokens`` defaults to JWTs from
    the settings; with ``token_versions`` revoked tokens are refused. ``readiness`` defaults to
    always ready, ``registry`` to a fresh one (``serve`` passes the process-wide default).
    ``host``/``port``/``metrics_port`` override the settings (0
    picks a free port; read ``RagServer.port`` after). Metrics are not served when
    ``PROMETHEUS_ENABLED`` is false.
    """
    if tokens is None:
        from rag.adapters.tokens import JwtTokens

        tokens = JwtTokens.from_settings(settings)
    bindings = [binding_for(servicer) for servicer in servicers]
    names = [binding.name for binding in bindings]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"a service is registered twice: {sorted(names)}")
    check_covered(method for binding in bindings for method in binding.methods)
    check_classified(method for binding in bindings for method in binding.methods)

    metrics = GrpcMetrics(registry if registry is not None else CollectorRegistry())
    health = HealthMonitor(
        names,
        readiness or always_ready,
        interval_s=readiness_interval_s,
        on_change=lambda ready: metrics.ready.set(1 if ready else 0),
    )
    admission = AdmissionInterceptor(admission_slots(settings), metrics)
    server = grpc.aio.server(
        interceptors=[
            RequestIdInterceptor(),
            TelemetryInterceptor(metrics),
            ErrorMappingInterceptor(),
            AuthInterceptor(AccessTokens(tokens, token_versions)),
            RateLimitInterceptor(
                TokenBuckets(settings.RATE_LIMIT_PER_SECOND, settings.RATE_LIMIT_BURST),
                ClientAddresses(settings.TRUSTED_PROXIES),
            ),
            admission,
            ValidationInterceptor(),
        ],
        options=[
            ("grpc.max_receive_message_length", settings.GRPC_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", settings.GRPC_MAX_MESSAGE_BYTES),
            # Fail when the port is taken instead of silently sharing it.
            ("grpc.so_reuseport", 0),
        ],
    )
    for servicer, binding in zip(servicers, bindings, strict=True):
        binding.add(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection([*names, grpc_health.SERVICE_NAME, reflection.SERVICE_NAME], server)

    address = f"{host or settings.GRPC_HOST}:{settings.GRPC_PORT if port is None else port}"
    bound = _bind(server, address, settings)
    metrics_address = None
    if settings.PROMETHEUS_ENABLED:
        metrics_address = (
            settings.METRICS_HOST,
            settings.METRICS_PORT if metrics_port is None else metrics_port,
        )
    return RagServer(
        server,
        port=bound,
        tls=settings.GRPC_TLS_CERT_FILE is not None,
        health=health,
        metrics=metrics,
        metrics_address=metrics_address,
        admission=admission,
    )


def _bind(server: grpc.aio.Server, address: str, settings: Settings) -> int:
    try:
        if settings.GRPC_TLS_CERT_FILE is not None and settings.GRPC_TLS_KEY_FILE is not None:
            credentials = grpc.ssl_server_credentials(
                [(settings.GRPC_TLS_KEY_FILE.read_bytes(), settings.GRPC_TLS_CERT_FILE.read_bytes())]
            )
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigurationError(f"cannot listen on {address} (GRPC_HOST/GRPC_PORT): in use or not local")
    return int(bound)


async def serve(
    settings: Settings,
    servicers: Sequence[object],
    *,
    tokens: TokenCodec | None = None,
    token_versions: TokenVersions | None = None,
    readiness: Readiness | Dependencies | None = None,
    registry: CollectorRegistry = REGISTRY,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the server until SIGTERM/SIGINT (or ``stop`` is set), then stop gracefully."""
    server = build_server(
        settings,
        servicers,
        tokens=tokens,
        token_versions=token_versions,
        readiness=readiness,
        registry=registry,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (ValueError, RuntimeError):  # not the main thread: the caller sets `stop`
            break
    try:
        await server.start()
        log.info(
            "gRPC API on %s:%d (%s), metrics on port %s",
            settings.GRPC_HOST,
            server.port,
            "TLS" if server.tls else "plaintext",
            server.metrics_port,
        )
        await stop.wait()
        log.info("stopping: health NOT_SERVING, %.0f s for in-flight calls", settings.GRPC_GRACE_PERIOD_S)
    finally:
        await server.stop(settings.GRPC_GRACE_PERIOD_S)
        for signum in handled:
            loop.remove_signal_handler(signum)
        log.info("stopped")


async def _run(settings: Settings) -> None:
    """Build the process's shared clients once, then serve."""
    from grpc_services.app import application

    async with application(settings) as app:
        await serve(
            settings,
            app.servicers,
            token_versions=app.token_versions,
            readiness=app.readiness,
        )


def main() -> int:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.LOG_LEVEL.value)
    try:
        asyncio.run(_run(settings))
    except RagError as exc:
        log.error("cannot serve: %s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
