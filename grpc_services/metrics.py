"""Prometheus metrics of the gRPC server and the HTTP endpoint that serves them.

``rag_grpc_requests_total{method,code}``, ``rag_grpc_request_duration_seconds{method}``,
``rag_grpc_requests_in_flight{method}``, ``rag_grpc_ready``, and admission control's
``rag_grpc_admission_in_flight{rpc_class}`` and ``rag_grpc_admission_rejected_total{rpc_class}``,
``rag_event_loop_lag_seconds`` (:mod:`grpc_services.loop_lag`) and ``rag_gc_pause_seconds{generation}``
(:mod:`grpc_services.gc_pauses`).
The HTTP endpoint serves ``/metrics``, ``/healthz`` (the process answers) and ``/readyz``
(dependencies ready), each with security headers; it is prometheus_client's WSGI app behind
a small header-adding wrapper, on a threaded WSGI server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from grpc_services.gc_pauses import PAUSE_BUCKETS
from grpc_services.loop_lag import LAG_BUCKETS

log = logging.getLogger(__name__)

# Up to two minutes: a streamed generation can legitimately take that long.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class GrpcMetrics:
    """The server's metrics, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "rag_grpc_requests",
            "gRPC calls handled, by full method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "rag_grpc_request_duration_seconds",
            "gRPC call latency until the last response message, by full method.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "rag_grpc_requests_in_flight", "gRPC calls being handled now.", ["method"], registry=registry
        )
        self.ready = Gauge(
            "rag_grpc_ready", "1 when the dependencies are ready (health SERVING).", registry=registry
        )
        self.admitted_in_flight = Gauge(
            "rag_grpc_admission_in_flight",
            "Admitted calls in progress, by RPC class (grpc_services.interceptors.admission).",
            ["rpc_class"],
            registry=registry,
        )
        self.admission_rejected = Counter(
            "rag_grpc_admission_rejected",
            "Calls refused with RESOURCE_EXHAUSTED because their RPC class was at its limit.",
            ["rpc_class"],
            registry=registry,
        )
        self.loop_lag = Histogram(
            "rag_event_loop_lag_seconds",
            "How late the server's event loop ran its heartbeat (every 100 ms): a stall holds every call.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.gc_pause = Histogram(
            "rag_gc_pause_seconds",
            "How long each garbage collection held the thread that ran it, by generation.",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )


def metrics_app(registry: CollectorRegistry, ready: Callable[[], bool]) -> WsgiApp:
    """The WSGI app of the metrics port: /metrics, /healthz, /readyz, with security headers."""
    prometheus = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def secured(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # Our own Server header replaces wsgiref's, which names the Python version.
            return start_response(status, [*headers, *SECURITY_HEADERS, ("Server", "rag")], exc_info)

        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}:
            return _text(secured, "405 Method Not Allowed", "use GET\n", [("Allow", "GET, HEAD")])
        if path == "/metrics":
            return prometheus(environ, secured)  # type: ignore[no-any-return]
        if path == "/healthz":
            return _text(secured, "200 OK", "ok\n")
        if path == "/readyz":
            return (
                _text(secured, "200 OK", "ready\n")
                if ready()
                else _text(secured, "503 Service Unavailable", "not ready\n")
            )
        return _text(secured, "404 Not Found", "not found: try /metrics, /healthz or /readyz\n")

    return app


def _text(
    start_response: StartResponse, status: str, body: str, extra: list[tuple[str, str]] | None = None
) -> list[bytes]:
    data = body.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    start_response(status, headers + (extra or []))
    return [data]


class _QuietHandler(WSGIRequestHandler):
    # No access-log line per scrape on stderr.
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics http: " + format, *args)


class MetricsHttpServer:
    """Serves :func:`metrics_app` from a background thread."""

    def __init__(self, app: WsgiApp, host: str, port: int) -> None:
        self._server: WSGIServer = make_server(
            host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
        )
        # A short poll interval keeps `stop` quick (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="rag-metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
