"""MLflow tracking server: PostgreSQL backend store (own database), artifacts in S3."""

from __future__ import annotations

import httpx

from rag.stack.components.base import Component
from rag.stack.components.postgres import Postgres


class MLflow(Component):
    name = "mlflow"
    startup_timeout = 180.0  # the first start migrates the backend store
    batch = True

    def ports(self) -> dict[str, int]:
        return {"mlflow": self.ctx.config.ports.mlflow}

    @property
    def url(self) -> str:
        return f"http://{self.ctx.host}:{self.ctx.config.ports.mlflow}"

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            MLFLOW_S3_ENDPOINT_URL=f"http://{self.ctx.host}:{self.ctx.config.ports.s3}",
            AWS_ACCESS_KEY_ID=self.ctx.secrets["S3_ACCESS_KEY_ID"],
            AWS_SECRET_ACCESS_KEY=self.ctx.secrets["S3_SECRET_ACCESS_KEY"],
            AWS_DEFAULT_REGION="us-east-1",
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            # Webhook receivers of the local stack are http:// on 127.0.0.1 (`rag models
            # webhook --subscribe`); MLflow refuses both unless told. Local development only:
            # a deployment keeps MLflow's defaults (https, public addresses).
            MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
            MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
            MLFLOW_WEBHOOK_CACHE_TTL="2",  # a new subscription delivers within seconds
            MLFLOW_BACKEND_STORE_URI=Postgres(self.ctx).database_url("mlflow", driver="postgresql+psycopg"),
        )
        return env

    def command(self) -> list[str]:
        # The backend store URI (it holds a password) travels in the environment, not argv.
        return [
            str(self.ctx.venv_bin / "mlflow"),
            "server",
            "--artifacts-destination",
            "s3://rag-mlflow/artifacts",
            "--host",
            self.ctx.host,
            "--port",
            str(self.ctx.config.ports.mlflow),
            "--workers",
            "1",
        ]

    def check(self) -> str:
        # A real call through the backend store, not just the health route.
        response = httpx.get(
            f"{self.url}/api/2.0/mlflow/registered-models/search",
            params={"max_results": 1},
            timeout=5,
        )
        response.raise_for_status()
        return f"MLflow at {self.url}"
