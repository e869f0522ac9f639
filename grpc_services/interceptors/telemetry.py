"""One access-log line (JSON, with the request id) and the Prometheus metrics of every call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio

from grpc_services.context import call_fields_scope
from grpc_services.interceptors.base import Call, CallInterceptor
from grpc_services.metrics import GrpcMetrics

log = logging.getLogger("grpc_services.access")

# Probes and reflection would drown the log at INFO.
_QUIET_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
_CODES_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def status_code(context: grpc.aio.ServicerContext[Any, Any], default: grpc.StatusCode) -> grpc.StatusCode:
    """The status the call ends with, as far as the servicer context knows it."""
    code: Any = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return _CODES_BY_VALUE.get(code, default)
    return default


class TelemetryInterceptor(CallInterceptor):
    def __init__(self, metrics: GrpcMetrics) -> None:
        self._metrics = metrics

    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[None]:
        method = call.method.lstrip("/")
        in_flight = self._metrics.in_flight.labels(method)
        in_flight.inc()
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        # Read while the call is live: grpc.aio's peer() on a stream the client has cancelled
        # spins forever (seen holding the event loop at 100 % CPU after a cancelled stream).
        peer = call.context.peer()
        with call_fields_scope() as fields:
            try:
                yield
                code = status_code(call.context, grpc.StatusCode.OK)
            except grpc.aio.AbortError:
                code = status_code(call.context, grpc.StatusCode.UNKNOWN)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                code = grpc.StatusCode.CANCELLED
                raise
            finally:
                elapsed = time.perf_counter() - started
                in_flight.dec()
                self._metrics.requests.labels(method, code.name).inc()
                self._metrics.duration.labels(method).observe(elapsed)
                level = logging.DEBUG if call.service in _QUIET_SERVICES else logging.INFO
                if log.isEnabledFor(level):
                    details = call.context.details() if code is not grpc.StatusCode.OK else None
                    log.log(
                        level,
                        "%s %s %.1f ms",
                        method,
                        code.name,
                        elapsed * 1000,
                        extra={
                            "method": method,
                            "code": code.name,
                            "latency_ms": round(elapsed * 1000, 3),
                            "peer": peer,
                            **({"details": details} if details else {}),
                            **fields,
                        },
                    )
