"""The local stack's components, one module each, all built on :mod:`.base`."""

from __future__ import annotations

from rag.stack.components.airflow import Airflow
from rag.stack.components.api import Api
from rag.stack.components.base import Component, StackContext
from rag.stack.components.mlflow import MLflow
from rag.stack.components.objectstore import ObjectStore
from rag.stack.components.postgres import Postgres
from rag.stack.components.redis import Redis
from rag.stack.components.triton import Triton

ALL: dict[str, type[Component]] = {
    "postgres": Postgres,
    "redis": Redis,
    "objectstore": ObjectStore,
    "mlflow": MLflow,
    "triton": Triton,
    "airflow": Airflow,
    "api": Api,
}

__all__ = ["ALL", "Component", "StackContext"]
