"""``python -m grpc_services.healthcheck``: exit 0 when the local gRPC server is SERVING.

The container HEALTHCHECK (no curl, no grpc_health_probe binary in the image). It calls
``grpc.health.v1.Health/Check`` on ``GRPC_HEALTH_TARGET`` (default ``127.0.0.1:$GRPC_PORT``),
over TLS when ``GRPC_TLS_CERT_FILE`` is set (the certificate is the trust root).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, *, service: str = "", timeout_s: float = 3.0, root_cert: bytes | None = None) -> bool:
    if root_cert is not None:
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root_cert))
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            print(f"unhealthy: {exc.code().name}", file=sys.stderr)
            return False
    serving = bool(response.status == health_pb2.HealthCheckResponse.SERVING)
    if not serving:
        print(
            f"unhealthy: {health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}",
            file=sys.stderr,
        )
    return serving


def main() -> int:
    target = os.environ.get("GRPC_HEALTH_TARGET") or f"127.0.0.1:{os.environ.get('GRPC_PORT', '50051')}"
    cert = os.environ.get("GRPC_TLS_CERT_FILE")
    root = Path(cert).read_bytes() if cert else None
    return 0 if check(target, root_cert=root) else 1


if __name__ == "__main__":
    sys.exit(main())
