"""The lifecycle's parts that need no server: webhook signatures (MLflow's own format), the
receiver's answers, version folders of the Triton repository, and weight checks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.datastructures import Headers
from starlette.testclient import TestClient

from rag.core.errors import ConfigurationError, FailedPrecondition, Unauthenticated
from rag.modelops.packaging import TAG_DIMENSION, TAG_KIND, TAG_SHA256, ModelKind, check_weights, weights_in
from rag.modelops.triton_config import RenderOptions, render_repository
from rag.modelops.triton_repository import TritonRepository
from rag.modelops.webhook import PromotionWorker, create_app, sign, verify
from rag.models import artifacts
from rag.models.triton_args import weights_source

TEMPLATES = Path(__file__).resolve().parents[3] / "triton_models"
SECRET = "s" * 64


def signed_headers(body: bytes, secret: str = SECRET, sent_at: int | None = None) -> dict[str, str]:
    timestamp = str(sent_at if sent_at is not None else int(time.time()))
    return {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(secret, "d-1", timestamp, body),
    }


def test_signature_is_the_one_mlflow_computes() -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = json.dumps({"entity": "model_version_alias", "action": "created", "data": {}})

    assert sign(SECRET, "d-1", "1700000000", body.encode()) == _generate_hmac_signature(
        SECRET, "d-1", "1700000000", body
    )


def test_verify_accepts_a_signed_delivery_and_says_why_it_refuses_others() -> None:
    body = b'{"x": 1}'
    good = signed_headers(body)

    assert verify(SECRET, Headers(good), body) == "d-1"
    with pytest.raises(Unauthenticated, match="required"):
        verify(SECRET, Headers({}), body)
    with pytest.raises(Unauthenticated, match="bad signature"):
        verify(SECRET, Headers(signed_headers(body, secret="t" * 64)), body)
    with pytest.raises(Unauthenticated, match="bad signature"):
        verify(SECRET, Headers(good), b'{"x": 2}')
    with pytest.raises(Unauthenticated, match="replay"):
        verify(SECRET, Headers(signed_headers(body, sent_at=int(time.time()) - 600)), body)
    with pytest.raises(Unauthenticated, match="Unix seconds"):
        verify(SECRET, Headers({**good, "X-MLflow-Timestamp": "yesterday"}), body)


@pytest.fixture
def receiver() -> Iterator[tuple[TestClient, list[tuple[ModelKind, str]]]]:
    calls: list[tuple[ModelKind, str]] = []
    worker = PromotionWorker(lambda kind, version: calls.append((kind, version)))
    with TestClient(create_app(SECRET, worker)) as client:
        yield client, calls
    worker.close()


def event(name: str = "rag-reranker", alias: str = "champion", action: str = "created") -> bytes:
    data = {"name": name, "alias": alias, "version": "7"}
    return json.dumps({"entity": "model_version_alias", "action": action, "data": data}).encode()


def test_receiver_queues_champion_events_of_rag_models_only(
    receiver: tuple[TestClient, list[tuple[ModelKind, str]]],
) -> None:
    client, calls = receiver
    body = event()

    accepted = client.post("/webhooks/mlflow", content=body, headers=signed_headers(body))
    assert accepted.status_code == 202
    assert accepted.json()["id"] == "d-1"
    for _ in range(100):
        if client.get("/webhooks/mlflow/deliveries/d-1").json()["status"] == "succeeded":
            break
        time.sleep(0.01)
    assert calls == [(ModelKind.RERANKER, "7")]
    # MLflow retries a delivery with the same id: it is not promoted twice.
    assert client.post("/webhooks/mlflow", content=body, headers=signed_headers(body)).status_code == 202
    for ignored in (event(alias="staging"), event(name="someone-elses-model"), event(action="deleted")):
        answer = client.post("/webhooks/mlflow", content=ignored, headers=signed_headers(ignored))
        assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert calls == [(ModelKind.RERANKER, "7")]


def test_receiver_answers_401_400_and_413_and_hardens_headers(
    receiver: tuple[TestClient, list[tuple[ModelKind, str]]],
) -> None:
    client, calls = receiver
    body = event()

    forged = client.post("/webhooks/mlflow", content=body, headers=signed_headers(body, secret="t" * 64))
    broken = client.post("/webhooks/mlflow", content=b"[1, 2]", headers=signed_headers(b"[1, 2]"))
    huge = b"x" * (65 * 1024)
    too_big = client.post("/webhooks/mlflow", content=huge, headers=signed_headers(huge))

    assert (forged.status_code, broken.status_code, too_big.status_code) == (401, 400, 413)
    assert forged.headers["x-content-type-options"] == "nosniff"
    assert forged.headers["cache-control"] == "no-store"
    assert calls == []


@pytest.fixture
def repository(tmp_path: Path) -> TritonRepository:
    render_repository(TEMPLATES, RenderOptions(), tmp_path / "repo")
    return TritonRepository(tmp_path / "repo")


def test_export_adds_the_next_version_with_weights_and_model_py(
    repository: TritonRepository, tmp_path: Path
) -> None:
    weights = tmp_path / "download" / "weights"
    weights.mkdir(parents=True)
    (weights / "config.json").write_text("{}")

    version = repository.export("embedder", weights, {"model_version": "x@sha256:1"})

    assert version == 2 and repository.versions("embedder") == [1, 2]
    folder = repository.root / "embedder" / "2"
    assert (folder / "model.py").read_text() == (TEMPLATES / "embedder" / "1" / "model.py").read_text()
    assert (folder / "weights" / "config.json").is_file() and not weights.exists()
    assert repository.metadata("embedder", 2) == {"model_version": "x@sha256:1"}
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left
    assert repository.output_dims("embedder", "EMBEDDING") == [384]

    other = tmp_path / "w2"
    other.mkdir()
    assert repository.export("embedder", other, {}) == 3
    assert repository.prune("embedder", keep=[3]) == [2]
    assert repository.versions("embedder") == [1, 3]
    with pytest.raises(ValueError, match="never removed"):
        repository.remove("embedder", 1)


def test_repository_refuses_the_templates_folder() -> None:
    with pytest.raises(ConfigurationError, match="templates"):
        TritonRepository(TEMPLATES).versions("embedder")


def test_a_promoted_version_loads_its_own_weights(repository: TritonRepository, tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    repository.export("reranker", weights, {"model_version": "ce@sha256:abc"})
    folder = str(repository.root / "reranker")
    parameters = {"MODEL_PATH": "/configured", "MODEL_VERSION": "configured@1"}

    promoted = weights_source({"model_repository": folder, "model_version": "2"}, parameters)
    base = weights_source({"model_repository": folder, "model_version": "1"}, parameters)

    assert (promoted.path, promoted.model_version) == (
        str(repository.root / "reranker/2/weights"),
        "ce@sha256:abc",
    )
    assert (base.path, base.model_version) == ("/configured", "configured@1")
    assert weights_source({}, {}).path is None


def test_check_weights_names_what_is_wrong(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text('{"hidden": 32}')
    tags = {TAG_KIND: "embedder", TAG_SHA256: artifacts.weights_digest(weights), TAG_DIMENSION: "384"}

    check_weights(ModelKind.EMBEDDER, weights, tags, embedding_dim=384)
    with pytest.raises(FailedPrecondition, match="corrupt"):
        check_weights(ModelKind.EMBEDDER, weights, {**tags, TAG_SHA256: "0" * 64})
    with pytest.raises(FailedPrecondition, match="not 'reranker'"):
        check_weights(ModelKind.RERANKER, weights, tags)
    with pytest.raises(FailedPrecondition, match=r"768-dimensional.*--embedding-dim 768"):
        check_weights(ModelKind.EMBEDDER, weights, {**tags, TAG_DIMENSION: "768"}, embedding_dim=384)
    with pytest.raises(FailedPrecondition, match="no MLmodel"):
        weights_in(tmp_path)
