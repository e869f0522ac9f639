"""Debian's real nginx runs infra/nginx/nginx.conf with a self-signed certificate made here,
and gRPC calls reach the session stack's API through it over TLS."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import argon2
import grpc
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rag.proto.rag.v1 import auth_pb2, auth_pb2_grpc, document_pb2, document_pb2_grpc
from rag.stack.process import free_port
from rag.stack.stack import LocalStack
from tests.unit.infra.tools import INFRA, tool

pytestmark = pytest.mark.integration


def self_signed(directory: Path) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rag-gateway.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("rag-gateway.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "fullchain.pem").write_bytes(pem)
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    os.chmod(directory / "privkey.pem", 0o600)
    return pem


def render(prefix: Path, *, port: int, upstream: str) -> Path:
    """The production file with local paths, port and upstream; nothing else changes."""
    text = (INFRA / "nginx" / "nginx.conf").read_text()
    replacements = {
        "user nginx;": "user nobody nogroup;" if os.geteuid() == 0 else "",
        "pid /run/nginx.pid;": f"pid {prefix}/nginx.pid;",
        "error_log /var/log/nginx/error.log warn;": f"error_log {prefix}/error.log warn;",
        "access_log /var/log/nginx/access.log grpc;": f"access_log {prefix}/access.log grpc;",
        "/etc/nginx/tls/": f"{prefix}/tls/",
        "server api:50051;": f"server {upstream};",
        "listen 8443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
        "http {": "http {\n"
        + "".join(
            f"    {kind}_temp_path {prefix}/tmp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    }
    for old, new in replacements.items():
        assert old in text, f"nginx.conf no longer contains {old!r}"
        text = text.replace(old, new)
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def gateway(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, bytes, Path]]:
    prefix = tmp_path_factory.mktemp("nginx")
    os.chmod(prefix, 0o755)  # workers (nobody) reach the temp directories
    (prefix / "tls").mkdir()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / kind).mkdir(parents=True)
        os.chmod(prefix / "tmp" / kind, 0o777)
    root_cert = self_signed(prefix / "tls")
    port = free_port()
    conf = render(prefix, port=port, upstream=f"127.0.0.1:{stack.config.ports.grpc}")
    nginx = tool("nginx")
    base = [nginx, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
    process = subprocess.Popen([*base, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.1)
        yield port, root_cert, prefix
    finally:
        process.terminate()  # SIGTERM: fast shutdown of master and workers
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()


def channel(port: int, root_cert: bytes) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=root_cert)
    return grpc.secure_channel(
        f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", "rag-gateway.test")]
    )


def test_health_check_through_tls_gateway(gateway: tuple[int, bytes, Path]) -> None:
    port, root_cert, _ = gateway
    with channel(port, root_cert) as ch:
        response, call = health_pb2_grpc.HealthStub(ch).Check.with_call(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    headers = dict(call.initial_metadata())
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    assert "server" not in headers or "nginx/" not in headers["server"]


def test_authenticated_rpc_through_tls_gateway(
    gateway: tuple[int, bytes, Path], db: psycopg.Connection
) -> None:
    port, root_cert, prefix = gateway
    username = f"gw-{uuid.uuid4().hex[:8]}"
    db.execute(
        "INSERT INTO users (username, password_hash, role, tenant) VALUES (%s, %s, 'user', 'gateway-test')",
        (username, argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pw-123456")),
    )
    db.commit()
    try:
        with channel(port, root_cert) as ch:
            login = auth_pb2_grpc.AuthServiceStub(ch).Login(
                auth_pb2.LoginRequest(username=username, password="pw-123456"), timeout=10
            )
            documents = document_pb2_grpc.DocumentServiceStub(ch)
            listed = documents.ListDocuments(
                document_pb2.ListDocumentsRequest(),
                metadata=(("authorization", f"Bearer {login.access_token}"),),
                timeout=10,
            )
            assert list(listed.documents) == []
            with pytest.raises(grpc.RpcError) as denied:
                documents.ListDocuments(document_pb2.ListDocumentsRequest(), timeout=10)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        db.execute("DELETE FROM users WHERE username = %s", (username,))
        db.commit()
    log = (prefix / "access.log").read_text()
    assert "/rag.v1.DocumentService/ListDocuments" in log and "grpc_status=0" in log


def test_only_tls_12_and_13(gateway: tuple[int, bytes, Path]) -> None:
    port, root_cert, _ = gateway
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cadata=root_cert.decode())
        context.minimum_version = context.maximum_version = version
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="rag-gateway.test") as tls,
        ):
            assert (
                tls.version()
                == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            )
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.1 is deprecated in Python too: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, pytest.raises(ssl.SSLError):
        old.wrap_socket(raw)
