"""The server's life and limits with a real server on port 0: health as dependencies come and
go, a graceful stop, rate and size limits, refused builds and TLS. Split from
``test_grpc_server`` (calls through the interceptors), whose helpers it shares.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import argon2
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_services.health import Dependencies
from grpc_services.server import RagServer, build_server
from grpc_services.servicers.auth import AuthServicer
from rag.adapters.passwords import Argon2Passwords
from rag.core.authentication import Authenticator
from rag.core.errors import ConfigurationError
from rag.proto.rag.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    model_pb2,
    model_pb2_grpc,
)
from rag.settings import Settings, load_settings
from tests.fixtures.grpc_server import EventLoopThread, running_server
from tests.integration.test_grpc_server import (
    SETTINGS,
    TOKENS,
    ModelsDouble,
    auth,
    health_status,
    http_get,
    rpc_error,
)
from tests.unit.test_settings import GOOD

pytestmark = pytest.mark.integration


def test_health_is_not_serving_until_ready_then_serving(grpc_loop: EventLoopThread) -> None:
    ready = threading.Event()

    async def readiness() -> bool:
        return ready.is_set()

    with (
        running_server(
            grpc_loop, SETTINGS, [ModelsDouble()], readiness=readiness, readiness_interval_s=0.05
        ) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        assert health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert health_status(channel, "rag.v1.ModelService") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert srv.metrics_port
        assert http_get(srv.metrics_port, "/readyz")[0] == 503
        ready.set()
        deadline = time.monotonic() + 5
        while (
            health_status(channel) != health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        assert health_status(channel, "rag.v1.ModelService") == health_pb2.HealthCheckResponse.SERVING
        assert http_get(srv.metrics_port, "/readyz")[0] == 200
        ready.clear()  # a dependency went away
        deadline = time.monotonic() + 5
        while (
            health_status(channel) != health_pb2.HealthCheckResponse.NOT_SERVING
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_each_service_follows_the_dependencies_it_needs(grpc_loop: EventLoopThread) -> None:
    up = {"database": threading.Event(), "generator": threading.Event()}

    def check(name: str):  # type: ignore[no-untyped-def]
        async def ready() -> bool:
            return up[name].is_set()

        return ready

    dependencies = Dependencies({name: check(name) for name in up}, {"rag.v1.ModelService": ("database",)})
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING

    def wait_for(channel: grpc.Channel, expected: tuple[Any, Any]) -> tuple[Any, Any]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            seen = (health_status(channel), health_status(channel, "rag.v1.ModelService"))
            if seen == expected:
                break
            time.sleep(0.02)
        return seen

    with (
        running_server(
            grpc_loop, SETTINGS, [ModelsDouble()], readiness=dependencies, readiness_interval_s=0.05
        ) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        assert wait_for(channel, (not_serving, not_serving)) == (not_serving, not_serving)
        up["database"].set()  # what ModelService needs; the generator (overall) is still down
        assert wait_for(channel, (not_serving, serving)) == (not_serving, serving)
        assert srv.metrics_port
        assert http_get(srv.metrics_port, "/readyz")[0] == 503
        up["generator"].set()
        assert wait_for(channel, (serving, serving)) == (serving, serving)
        up["database"].clear()
        assert wait_for(channel, (not_serving, not_serving)) == (not_serving, not_serving)

    with pytest.raises(ValueError, match="unknown dependencies"):
        Dependencies({"database": check("database")}, {"rag.v1.SearchService": ("embedder",)})


def test_stop_goes_not_serving_before_closing(grpc_loop: EventLoopThread) -> None:
    with (
        running_server(grpc_loop, SETTINGS, [ModelsDouble()]) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        stopping = grpc_loop.loop.call_soon_threadsafe  # schedule stop without waiting for it
        stopping(lambda: grpc_loop.loop.create_task(srv.stop(2)))
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()


def test_failing_readiness_check_counts_as_not_ready(grpc_loop: EventLoopThread) -> None:
    async def broken() -> bool:
        raise ConnectionError("database down")

    with running_server(
        grpc_loop, SETTINGS, [ModelsDouble()], readiness=broken, readiness_interval_s=0.05
    ) as srv:
        time.sleep(0.2)
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            assert health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_rate_limit_per_principal(grpc_loop: EventLoopThread) -> None:
    limited = SETTINGS.model_copy(update={"RATE_LIMIT_PER_SECOND": 0.5, "RATE_LIMIT_BURST": 3})
    with (
        running_server(grpc_loop, limited, [ModelsDouble()], tokens=TOKENS) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        stub = model_pb2_grpc.ModelServiceStub(channel)
        for _ in range(3):
            stub.ListModels(model_pb2.ListModelsRequest(), metadata=auth(username="alice"))
        error = rpc_error(stub.ListModels, model_pb2.ListModelsRequest(), metadata=auth(username="alice"))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "rate limit of 0.5 requests/s exceeded" in error.details()
        # Another principal has its own bucket; health checks are never limited.
        stub.ListModels(model_pb2.ListModelsRequest(), metadata=auth(username="bob"))
        for _ in range(10):
            assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        # Calls without a valid token are refused before they count against anyone's bucket.
        for _ in range(5):
            error = rpc_error(stub.ListModels, model_pb2.ListModelsRequest())
            assert error.code() is grpc.StatusCode.UNAUTHENTICATED


class NoUsers:
    async def get(self, username: str) -> None:
        return None

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        raise AssertionError("not called")


def test_login_attempts_are_limited_per_client_address(grpc_loop: EventLoopThread) -> None:
    limited = SETTINGS.model_copy(update={"RATE_LIMIT_PER_SECOND": 0.5, "RATE_LIMIT_BURST": 3})
    cheap = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    authenticator = Authenticator(NoUsers(), Argon2Passwords(cheap), TOKENS)
    with (
        running_server(grpc_loop, limited, [AuthServicer(authenticator)], tokens=TOKENS) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        guess = auth_pb2.LoginRequest(username="alice", password="guess")
        codes = [rpc_error(stub.Login, guess).code() for _ in range(5)]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2


def test_message_size_limit(grpc_loop: EventLoopThread) -> None:
    small = SETTINGS.model_copy(update={"GRPC_MAX_MESSAGE_BYTES": 64 * 1024})
    with (
        running_server(grpc_loop, small, [ModelsDouble()], tokens=TOKENS) as srv,
        grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel,
    ):
        stub = model_pb2_grpc.ModelServiceStub(channel)
        big = model_pb2.WarmModelsRequest(model_names=["x" * (100 * 1024)])
        error = rpc_error(stub.WarmModels, big, metadata=auth())
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_build_refuses_duplicates_and_busy_ports(grpc_loop: EventLoopThread) -> None:
    async def build(port: int = 0, servicers: tuple[object, ...] = (ModelsDouble(),)) -> RagServer:
        return build_server(SETTINGS, list(servicers), host="127.0.0.1", port=port)

    with pytest.raises(ConfigurationError, match="registered twice"):
        grpc_loop.run(build(servicers=(ModelsDouble(), ModelsDouble())))
    with (
        running_server(grpc_loop, SETTINGS, [ModelsDouble()]) as srv,
        pytest.raises(ConfigurationError, match=rf"cannot listen on 127.0.0.1:{srv.port}"),
    ):
        grpc_loop.run(build(port=srv.port))


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_from_cert_and_key_settings(grpc_loop: EventLoopThread, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls: Settings = load_settings(GOOD | {"GRPC_TLS_CERT_FILE": str(cert), "GRPC_TLS_KEY_FILE": str(key)})
    with running_server(grpc_loop, tls, [ModelsDouble()], tokens=TOKENS) as srv:
        assert srv.tls
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{srv.port}", credentials) as channel:
            assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
            reply = model_pb2_grpc.ModelServiceStub(channel).ListModels(
                model_pb2.ListModelsRequest(), metadata=auth()
            )
            assert reply.models[0].name == "alice"
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as plain:
            with pytest.raises(grpc.RpcError) as caught:
                health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_tls_settings_come_in_pairs(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    with pytest.raises(
        ConfigurationError, match="GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE must be set together"
    ):
        load_settings(GOOD | {"GRPC_TLS_CERT_FILE": str(cert)})
    with pytest.raises(ConfigurationError, match="GRPC_TLS_KEY_FILE"):
        load_settings(
            GOOD | {"GRPC_TLS_CERT_FILE": str(cert), "GRPC_TLS_KEY_FILE": str(tmp_path / "missing")}
        )
