"""MLflow -> Triton promotion on the real stack: no failed request during a switch, the
webhook, rollback, and corrupt artifacts that fail while the old version keeps serving.

The embedder serves MiniLM (as registered here) when this module ends, as other tests expect.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
import pytest

from rag.adapters.mlflow_registry import ModelVersionInfo
from rag.adapters.triton import FloatArray, TritonClient, TritonOptions
from rag.core.errors import FailedPrecondition
from rag.core.ports import Priority
from rag.modelops.lifecycle import ModelLifecycle
from rag.modelops.packaging import CHAMPION, TAG_MODEL_VERSION, TAG_SHA256, ModelKind, package_model
from rag.modelops.webhook import EVENT, PromotionWorker, WebhookServer, create_app, sign
from rag.models import artifacts
from rag.models.embedding import Embedder
from rag.settings import Settings
from tests.fixtures.tiny_models import build_tiny_sentence_transformer

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures.models"]  # the lifecycle fixture

EMBEDDER = ModelKind.EMBEDDER
PROBE = "Aspirin lowers the risk of a first heart attack."


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def versions(lifecycle: ModelLifecycle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """rag-embedder versions: the packaged MiniLM and a tiny 384-dim embedder."""
    tiny_path = build_tiny_sentence_transformer(tmp_path_factory.mktemp("embedder") / "tiny")
    registered: dict[str, Any] = {
        "minilm": lifecycle.register(EMBEDDER),
        "tiny": lifecycle.register(EMBEDDER, tiny_path, name="tiny-embedder"),
        "tiny_path": tiny_path,
    }
    yield registered
    serving = lifecycle.records.serving("embedder")
    if serving is None or serving.mlflow_version != registered["minilm"].version:
        lifecycle.promote(EMBEDDER, registered["minilm"].version)


def _serve_minilm(lifecycle: ModelLifecycle, versions: dict[str, Any]) -> int:
    deployment = lifecycle.promote(EMBEDDER, versions["minilm"].version)  # a no-op if it serves
    assert deployment.triton_version is not None
    return deployment.triton_version


def _probe(settings: Settings) -> FloatArray:
    async def run() -> FloatArray:
        async with TritonClient(TritonOptions(settings.TRITON_GRPC_URL)) as client:
            return cast(FloatArray, (await client.embed([PROBE]))[0])

    return asyncio.run(run())


def _active_index(db: psycopg.Connection) -> Any:
    return db.execute(
        "SELECT model_version, status FROM embedding_indexes WHERE status = 'active'"
    ).fetchone()


def _index_status(db: psycopg.Connection, model_version: str) -> str | None:
    row = db.execute(
        "SELECT status FROM embedding_indexes WHERE model_version = %s", (model_version,)
    ).fetchone()
    return str(row[0]) if row else None


class Hammer:
    """Embeds ``PROBE`` from ``workers`` concurrent clients until stopped; keeps every outcome."""

    def __init__(self, settings: Settings, workers: int = 4) -> None:
        self.url, self.workers = settings.TRITON_GRPC_URL, workers
        self.vectors: list[FloatArray] = []
        self.answered_at: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with TritonClient(TritonOptions(self.url, timeout_s=60.0, max_retries=0)) as client:

            async def worker() -> None:
                while not self._stop.is_set():
                    try:
                        self.vectors.append((await client.embed([PROBE], priority=Priority.INTERACTIVE))[0])
                        self.answered_at.append(time.monotonic())
                    except Exception as exc:
                        self.failures.append(f"{type(exc).__name__}: {exc}")

            await asyncio.gather(*(worker() for _ in range(self.workers)))

    def __enter__(self) -> Hammer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.vectors and not self.failures and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        time.sleep(0.5)  # a few requests on the new version too
        self._stop.set()
        self._thread.join(timeout=60)


def test_promotion_switches_versions_without_failing_a_request(
    lifecycle: ModelLifecycle,
    settings: Settings,
    versions: dict[str, Any],
    minilm: Embedder,
    db: psycopg.Connection,
) -> None:
    info: ModelVersionInfo = versions["minilm"]
    serving = lifecycle.records.serving("embedder")
    if serving is not None and serving.mlflow_version == info.version:  # a rerun: switch away first
        lifecycle.promote(EMBEDDER, versions["tiny"].version)
    active = _active_index(db)
    old = lifecycle.triton.model_metadata("embedder")["versions"]

    with Hammer(settings) as hammer:
        began = time.monotonic()
        deployment = lifecycle.promote(EMBEDDER, info.version)
        ended = time.monotonic()

    assert hammer.failures == []
    # Requests were answered all through the switch (the load takes seconds), none failed.
    assert sum(began < t < ended for t in hammer.answered_at) >= 10
    expected = minilm.encode([PROBE])[0]
    assert min(float(v @ expected) for v in hammer.vectors) >= 0.9999  # both versions are MiniLM
    new = str(deployment.triton_version)
    assert new not in old
    assert lifecycle.triton.model_metadata("embedder")["versions"] == [new]
    assert lifecycle.triton.model_ready("embedder", new)
    assert not any(lifecycle.triton.model_ready("embedder", v) for v in old)
    assert lifecycle.repository.versions("embedder") == [1, int(new)]  # the old folder is gone
    assert (deployment.status, deployment.mlflow_version) == ("serving", info.version)
    assert lifecycle.registry.alias("rag-embedder", CHAMPION) == info.version
    assert _index_status(db, info.tag(TAG_MODEL_VERSION)) in {"building", "active"}
    assert _active_index(db) == active


def test_signed_webhook_promotes_and_rollback_restores_the_previous_version(
    lifecycle: ModelLifecycle,
    settings: Settings,
    versions: dict[str, Any],
    minilm: Embedder,
    db: psycopg.Connection,
) -> None:
    tiny, previous = versions["tiny"], versions["minilm"]
    before = _serve_minilm(lifecycle, versions)
    active = _active_index(db)
    secret = settings.SECRET_KEY.get_secret_value()
    worker = PromotionWorker(lifecycle.promote)
    server = WebhookServer(create_app(secret, worker))
    server.start()
    try:
        body = _event("rag-embedder", CHAMPION, tiny.version)
        response = httpx.post(server.url, content=body, headers=_signed(secret, body), timeout=10)
        assert response.status_code == 202, response.text
        delivery = _wait_for(server, response.json()["id"])
    finally:
        server.stop()
        worker.close()

    assert delivery["status"] == "succeeded", delivery
    promoted = lifecycle.records.serving("embedder")
    assert promoted is not None and promoted.mlflow_version == tiny.version
    assert promoted.triton_version is not None and promoted.triton_version > before
    assert lifecycle.triton.model_metadata("embedder")["versions"] == [str(promoted.triton_version)]
    assert lifecycle.registry.alias("rag-embedder", CHAMPION) == tiny.version
    assert float(_probe(settings) @ minilm.encode([PROBE])[0]) < 0.99  # the tiny embedder answers now
    # A new embedder makes the index stale; the active index keeps serving queries.
    assert _index_status(db, tiny.tag(TAG_MODEL_VERSION)) == "building"
    assert _active_index(db) == active

    rolled = lifecycle.rollback(EMBEDDER)

    assert rolled.mlflow_version == previous.version
    assert rolled.triton_version is not None and rolled.triton_version > promoted.triton_version
    assert lifecycle.triton.model_metadata("embedder")["versions"] == [str(rolled.triton_version)]
    assert lifecycle.registry.alias("rag-embedder", CHAMPION) == previous.version
    assert float(_probe(settings) @ minilm.encode([PROBE])[0]) >= 0.9999
    statuses = {d.id: d.status for d in lifecycle.records.history("embedder")}
    assert statuses[promoted.id] == "retired"


def test_webhook_rejects_unsigned_forged_and_replayed_deliveries(
    lifecycle: ModelLifecycle, settings: Settings, versions: dict[str, Any]
) -> None:
    secret = settings.SECRET_KEY.get_secret_value()
    promoted: list[tuple[ModelKind, str]] = []
    worker = PromotionWorker(lambda kind, version: promoted.append((kind, version)))
    server = WebhookServer(create_app(secret, worker))
    server.start()
    body = _event("rag-embedder", CHAMPION, versions["tiny"].version)
    forged = _signed("not-the-secret-" + "x" * 32, body)
    tampered = _signed(secret, body)
    stale = _signed(secret, body, sent_at=int(time.time()) - 3600)
    try:
        answers = [
            httpx.post(server.url, content=body, headers=headers, timeout=10)
            for headers in ({"Content-Type": "application/json"}, forged, stale)
        ]
        answers.append(
            httpx.post(server.url, content=body.replace(b"champion", b"champio "), headers=tampered)
        )
    finally:
        server.stop()
        worker.close()

    assert [a.status_code for a in answers] == [401, 401, 401, 401]
    assert "bad signature" in answers[1].json()["error"]
    assert all(a.headers["x-content-type-options"] == "nosniff" for a in answers)
    assert promoted == []


def test_mlflow_delivers_an_alias_change_to_the_subscribed_receiver(
    lifecycle: ModelLifecycle, settings: Settings, versions: dict[str, Any]
) -> None:
    """The stack's MLflow server itself posts the signed event (http on 127.0.0.1 allowed)."""
    secret = settings.SECRET_KEY.get_secret_value()
    received: list[tuple[ModelKind, str]] = []
    worker = PromotionWorker(lambda kind, version: received.append((kind, version)))
    server = WebhookServer(create_app(secret, worker))
    server.start()
    name, tiny = "rag-embedder", versions["tiny"].version
    champion = lifecycle.registry.alias(name, CHAMPION)
    hook = lifecycle.registry.subscribe(
        f"rag-promote-test-{uuid.uuid4().hex[:6]}", server.url, [EVENT], secret
    )
    try:
        time.sleep(2.5)  # the stack's MLflow caches its webhook list for 2 s
        lifecycle.registry.set_alias(name, CHAMPION, tiny)
        deadline = time.monotonic() + 30
        while (EMBEDDER, tiny) not in received and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        lifecycle.registry.unsubscribe(hook)
        if champion is not None:
            lifecycle.registry.set_alias(name, CHAMPION, champion)
        server.stop()
        worker.close()

    assert (EMBEDDER, tiny) in received
    # Putting the alias back may be delivered too (MLflow's webhook list is cached for 2 s).
    assert set(received) <= {(EMBEDDER, tiny), (EMBEDDER, champion)}


def _register_corrupt(lifecycle: ModelLifecycle, versions: dict[str, Any], folder: Path) -> ModelVersionInfo:
    """A version whose weights file is garbage but whose sha256 tag matches it (it was
    uploaded corrupt): only loading it can tell."""
    packaged = package_model(EMBEDDER, versions["tiny_path"], folder, name="corrupt")
    (packaged.weights / "model.safetensors").write_bytes(b"\0not a safetensors file" * 64)
    tags = {**packaged.tags, TAG_SHA256: artifacts.weights_digest(packaged.weights)}
    return lifecycle.registry.create_version("rag-embedder", packaged.directory, tags=tags)


def _triton_ready(settings: Settings) -> bool:
    return httpx.get(f"{settings.TRITON_HTTP_URL}/v2/health/ready", timeout=5).status_code == 200


def test_corrupt_weights_fail_promotion_and_the_old_version_keeps_serving(
    lifecycle: ModelLifecycle, settings: Settings, versions: dict[str, Any], minilm: Embedder, tmp_path: Path
) -> None:
    serving = _serve_minilm(lifecycle, versions)
    corrupt = _register_corrupt(lifecycle, versions, tmp_path / "model")

    with pytest.raises(FailedPrecondition) as failure:
        lifecycle.promote(EMBEDDER, corrupt.version)

    message = str(failure.value)
    assert f"cannot promote rag-embedder version {corrupt.version}: the weights do not load" in message
    assert "SafetensorError" in message
    assert f"keeps serving version {serving}" in message
    assert lifecycle.repository.versions("embedder") == [1, serving]  # the half export is gone
    assert lifecycle.triton.model_metadata("embedder")["versions"] == [str(serving)]
    assert float(_probe(settings) @ minilm.encode([PROBE])[0]) >= 0.9999
    assert _triton_ready(settings)
    assert lifecycle.registry.alias("rag-embedder", CHAMPION) == versions["minilm"].version
    failed = lifecycle.records.history("embedder", limit=1)[0]
    assert (failed.mlflow_version, failed.status) == (corrupt.version, "failed")
    assert failed.error_reason and "SafetensorError" in failed.error_reason


def test_a_version_triton_cannot_load_fails_and_the_old_weights_keep_serving(
    lifecycle: ModelLifecycle, settings: Settings, versions: dict[str, Any], minilm: Embedder, tmp_path: Path
) -> None:
    """Defence in depth: without the in-process smoke test, Triton itself refuses the weights."""
    serving = _serve_minilm(lifecycle, versions)
    corrupt = _register_corrupt(lifecycle, versions, tmp_path / "model")
    unchecked = ModelLifecycle(
        lifecycle.registry, lifecycle.triton, lifecycle.repository, lifecycle.records, preflight=False
    )

    with pytest.raises(FailedPrecondition) as failure:
        unchecked.promote(EMBEDDER, corrupt.version)

    attempted = serving + 1
    message = str(failure.value)
    assert f"cannot promote rag-embedder version {corrupt.version}: Triton could not load" in message
    assert "SafetensorError" in message and "\n" not in message  # the stub's traceback stays in its log
    assert f"keeps serving the same weights, re-served as version {attempted}" in message
    # Triton marks a version that failed to load as failed until that number loads (and its
    # strict readiness is down meanwhile): the old weights now serve under that number.
    assert _triton_ready(settings)
    assert lifecycle.triton.model_metadata("embedder")["versions"] == [str(attempted)]
    assert lifecycle.repository.versions("embedder") == [1, attempted]
    assert float(_probe(settings) @ minilm.encode([PROBE])[0]) >= 0.9999
    now = lifecycle.records.serving("embedder")
    assert now is not None and (now.mlflow_version, now.triton_version) == (
        versions["minilm"].version,
        attempted,
    )
    assert lifecycle.registry.alias("rag-embedder", CHAMPION) == versions["minilm"].version


def test_weights_changed_after_registration_fail_before_triton_is_touched(
    lifecycle: ModelLifecycle, versions: dict[str, Any], tmp_path: Path
) -> None:
    serving = _serve_minilm(lifecycle, versions)
    packaged = package_model(EMBEDDER, versions["tiny_path"], tmp_path / "model", name="tampered")
    tags = {**packaged.tags, TAG_SHA256: "0" * 64}  # registered digest != the uploaded files'
    tampered = lifecycle.registry.create_version("rag-embedder", packaged.directory, tags=tags)

    with pytest.raises(
        FailedPrecondition, match=rf"rag-embedder version {tampered.version}: the weights are corrupt"
    ):
        lifecycle.promote(EMBEDDER, tampered.version)

    assert lifecycle.repository.versions("embedder") == [1, serving]
    assert lifecycle.triton.model_metadata("embedder")["versions"] == [str(serving)]


def _event(name: str, alias: str, version: str) -> bytes:
    """A payload as MLflow 3 sends it for ``model_version_alias.created``."""
    payload = {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2026-11-25T12:00:00+00:00",
        "data": {"name": name, "alias": alias, "version": version},
    }
    return json.dumps(payload).encode()


def _signed(secret: str, body: bytes, *, sent_at: int | None = None) -> dict[str, str]:
    delivery, timestamp = str(uuid.uuid4()), str(sent_at or int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(secret, delivery, timestamp, body),
    }


def _wait_for(server: WebhookServer, delivery_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state: dict[str, Any] = httpx.get(f"{server.url}/deliveries/{delivery_id}", timeout=5).json()
        if state["status"] in {"succeeded", "failed"}:
            return state
        time.sleep(0.25)
    raise AssertionError(f"delivery {delivery_id} did not finish within {timeout_s}s")
