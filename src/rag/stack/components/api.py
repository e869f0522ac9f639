"""RAG System's own gRPC API (``python -m grpc_services``), started last."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rag.stack.components.base import Component
from rag.stack.secrets import read_env_file


class Api(Component):
    name = "api"
    startup_timeout = 120.0  # SERVING needs the database, S3 and the Triton models
    repair_grace = 30.0  # its clients reconnect within 30 s of a dependency's return

    def ports(self) -> dict[str, int]:
        return {"grpc": self.ctx.config.ports.grpc, "metrics": self.ctx.config.ports.metrics}

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(read_env_file(self.ctx.config.state_dir / "stack.env"))
        env.update(GRPC_PORT=str(self.ctx.config.ports.grpc), METRICS_PORT=str(self.ctx.config.ports.metrics))
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "grpc_services"]

    def check(self) -> str:
        target = f"{self.ctx.host}:{self.ctx.config.ports.grpc}"
        with grpc.insecure_channel(target) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(
                f"health is {health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}"
            )
        return f"gRPC API at {target} (SERVING), metrics http://{self.ctx.host}:{self.ctx.config.ports.metrics}/metrics"
