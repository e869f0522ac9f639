"""Small parts of the server: bearer parsing, JSON logs, servicer binding, the metrics app."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from grpc_services.context import current_request_id, request_id_scope
from grpc_services.interceptors.auth import bearer_token
from grpc_services.logs import JsonFormatter, RequestIdFilter, configure_logging
from grpc_services.metrics import SECURITY_HEADERS, GrpcMetrics, metrics_app
from grpc_services.server import binding_for
from rag.core.errors import Unauthenticated
from rag.proto.rag.v1 import model_pb2_grpc, search_pb2_grpc


@pytest.mark.parametrize("value", ["Bearer abc", "bearer abc", "  Bearer   abc  "])
def test_bearer_token(value: str) -> None:
    assert bearer_token(value) == "abc"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "no access token"),
        ("abc", "not a bearer token"),
        ("Basic abc", "not a bearer token"),
        ("Bearer ", "not a bearer token"),
        (b"Bearer abc", "malformed authorization metadata"),
    ],
)
def test_bad_authorization_metadata(value: str | bytes | None, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        bearer_token(value)


def test_json_logs_carry_extras_request_id_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with request_id_scope("req-42"):
            assert current_request_id() == "req-42"
            logger.warning("hello %s", "world", extra={"method": "rag.v1.X/Y", "latency_ms": 1.5})
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "hello world"
    assert first["level"] == "WARNING"
    assert first["request_id"] == "req-42"
    assert first["method"] == "rag.v1.X/Y"
    assert first["latency_ms"] == 1.5
    assert first["ts"].endswith("+00:00")
    assert "ValueError: boom" in second["exc_info"]
    assert "request_id" not in third
    assert current_request_id() is None


def test_configure_logging_replaces_root_handlers() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        stream = io.StringIO()
        configure_logging("INFO", stream)
        logging.getLogger("test.configure").info("json please")
        assert json.loads(stream.getvalue())["message"] == "json please"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


class Models(model_pb2_grpc.ModelServiceServicer):
    async def ListModels(self, request: Any, context: Any) -> Any:
        return None


class BlockingSearch(search_pb2_grpc.SearchServiceServicer):
    def Search(self, request: Any, context: Any) -> Any:
        return None


def test_binding_finds_the_generated_service() -> None:
    binding = binding_for(Models())  # type: ignore[abstract]  # a double serves what the test calls; grpc answers UNIMPLEMENTED for the rest
    assert binding.name == "rag.v1.ModelService"
    assert "/rag.v1.ModelService/ListModels" in binding.methods
    assert len(binding.methods) == 4


def test_binding_refuses_blocking_methods_and_strangers() -> None:
    with pytest.raises(TypeError, match=r"BlockingSearch.Search must be `async def`"):
        binding_for(BlockingSearch())
    with pytest.raises(TypeError, match="not a subclass of a generated"):
        binding_for(object())


def _get(app: Any, path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_metrics_app_routes_and_always_sends_security_headers() -> None:
    registry = CollectorRegistry()
    metrics = GrpcMetrics(registry)
    metrics.requests.labels("rag.v1.X/Y", "OK").inc()
    ready = {"value": False}
    app = metrics_app(registry, lambda: ready["value"])
    cases = {
        ("/metrics", "GET"): "200 OK",
        ("/healthz", "GET"): "200 OK",
        ("/readyz", "GET"): "503 Service Unavailable",
        ("/nope", "GET"): "404 Not Found",
        ("/metrics", "POST"): "405 Method Not Allowed",
    }
    for (path, method), status in cases.items():
        got, headers, body = _get(app, path, method)
        assert got == status, path
        for name, value in SECURITY_HEADERS:
            assert headers[name] == value
        if path == "/metrics" and method == "GET":
            assert b'rag_grpc_requests_total{code="OK",method="rag.v1.X/Y"} 1.0' in body
    ready["value"] = True
    assert _get(app, "/readyz")[0] == "200 OK"
