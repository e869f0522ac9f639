"""`python -m grpc_services` as operators run it: settings from the environment, JSON logs,
health SERVING once PostgreSQL answers, Login against the real users table, and SIGTERM ->
NOT_SERVING -> a clean exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import argon2
import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rag.proto.rag.v1 import auth_pb2, auth_pb2_grpc
from rag.stack.process import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def wait_serving(port: int, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"the server on port {port} did not become SERVING in {deadline_s} s")


def test_main_serves_logs_json_and_stops_on_sigterm(
    app_env: dict[str, str], db: psycopg.Connection, tmp_path: Path
) -> None:
    username = f"proc-{uuid.uuid4().hex[:8]}"
    db.execute(
        "INSERT INTO users (username, password_hash, role, tenant) VALUES (%s, %s, 'user', 'acme')",
        (username, argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pw-123456")),
    )
    db.commit()
    port, metrics_port = free_port(), free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **app_env,
        "GRPC_PORT": str(port),
        "METRICS_PORT": str(metrics_port),
        "GRPC_GRACE_PERIOD_S": "2",
        "LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "server.log"
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            [sys.executable, "-m", "grpc_services"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log
        ) as process,
    ):
        try:
            _exercise(process, port, metrics_port, username)
        finally:
            if process.poll() is None:
                process.kill()
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert any(m.startswith("gRPC API on 127.0.0.1:") for m in messages)
    assert "dependencies ready: health SERVING" in messages
    assert any(m.startswith("stopping: health NOT_SERVING") for m in messages)
    assert messages[-1] == "stopped"
    login = next(line for line in lines if line.get("method") == "rag.v1.AuthService/Login")
    assert login["code"] == "OK"
    assert len(login["request_id"]) == 32
    assert "pw-123456" not in json.dumps(lines)


def _exercise(process: subprocess.Popen[bytes], port: int, metrics_port: int, username: str) -> None:
    wait_serving(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=5) as ready:
        assert ready.status == 200
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username=username, password="pw-123456"), timeout=10
        )
    assert reply.tenant == "acme"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def test_main_reports_bad_settings_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grpc_services"],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: DATABASE_URL is not set")
    assert len(result.stderr.splitlines()) == 1
