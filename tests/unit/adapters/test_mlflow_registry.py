"""ModelRegistry builds its MlflowClient on the first call, once, not when it is constructed."""

from __future__ import annotations

import sys
import threading
import types
from typing import Any, ClassVar

import pytest

from rag.adapters.mlflow_registry import ModelRegistry, RegistryOptions


class FakeMlflowClient:
    built: ClassVar[list[FakeMlflowClient]] = []

    def __init__(self, *, tracking_uri: str, registry_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.aliases: list[tuple[str, str, str]] = []
        FakeMlflowClient.built.append(self)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases.append((name, alias, version))


@pytest.fixture
def fake_mlflow(monkeypatch: pytest.MonkeyPatch) -> list[FakeMlflowClient]:
    module: Any = types.ModuleType("mlflow")
    module.MlflowClient = FakeMlflowClient
    exceptions: Any = types.ModuleType("mlflow.exceptions")
    exceptions.MlflowException = type("MlflowException", (Exception,), {})
    monkeypatch.setitem(sys.modules, "mlflow", module)
    monkeypatch.setitem(sys.modules, "mlflow.exceptions", exceptions)
    monkeypatch.setattr(FakeMlflowClient, "built", [])
    return FakeMlflowClient.built


def test_the_client_waits_for_the_first_call_and_is_built_once(fake_mlflow: list[FakeMlflowClient]) -> None:
    registry = ModelRegistry(RegistryOptions("http://mlflow.invalid:5000"))
    assert fake_mlflow == []  # a process that never asks MLflow anything builds no client

    callers = [
        threading.Thread(target=registry.set_alias, args=("rag-embedder", "champion", str(n)))
        for n in range(8)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert len(fake_mlflow) == 1
    assert fake_mlflow[0].tracking_uri == "http://mlflow.invalid:5000"
    assert sorted(v for _, _, v in fake_mlflow[0].aliases) == [str(n) for n in range(8)]
