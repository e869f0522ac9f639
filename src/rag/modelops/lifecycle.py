"""The model lifecycle: register a version in MLflow, promote it into Triton, roll back.

Promotion is the same code whoever triggers it (``rag models promote``, the MLflow webhook
on ``model_version_alias.created``, the model-registration DAG):

1. point the alias ``champion`` at the version (nothing changes if it points there already,
   so the webhook that this fires finds the work done);
2. download the version and export it into the Triton repository as the next numeric version
   (``<repo>/<model>/<n>/weights``), then check it: the sha256 tag, the kind, for an embedder
   the dimension the index holds, and (``preflight``) that the runtime loads it and answers;
3. load the model through Triton's model-control API. Triton loads version n beside the
   serving one, switches to it once it is READY and unloads the old version after its
   in-flight requests: no request fails. If the load fails, Triton keeps the old version
   (re-served as version n, see ``_recover``, so that Triton's readiness recovers too);
4. retire the old version (its folder is deleted once Triton has unloaded it) and record the
   deployment (``model_deployments``: deploying -> serving, the old row -> retired).
   A new embedder also records that the index is stale (``embedding_indexes``: building).

A failure at any step deletes the half-exported folder, records the deployment as failed
with its reason, moves the alias back, and raises with the model, version and reason; the
old version keeps serving. Promotions of one model are serialized by a database lock.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rag.adapters.mlflow_registry import ModelRegistry, ModelVersionInfo, RegistryOptions
from rag.adapters.postgres.deployments import Deployment, DeploymentRecords
from rag.core.errors import FailedPrecondition, InvalidInput, RagError
from rag.modelops import packaging
from rag.modelops.packaging import CHAMPION, ModelKind
from rag.modelops.triton_repository import TritonRepository
from rag.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

# Triton version states in which a version still runs (or is about to) and holds its files.
_BUSY = frozenset({"READY", "LOADING", "UNLOADING"})


class ModelControl(Protocol):
    """What promotion needs from Triton (``rag.adapters.triton.BlockingTriton`` provides it)."""

    def load_model(self, model: str, timeout: float | None = ...) -> None: ...

    def model_ready(self, model: str, version: str = ...) -> bool: ...

    def repository_index(self) -> list[dict[str, Any]]: ...

    def model_metadata(self, model: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ModelStatus:
    """One model as the registry, the deployment records and Triton see it."""

    kind: ModelKind
    versions: list[ModelVersionInfo]
    champion: str | None
    serving: Deployment | None
    triton: dict[int, str]  # Triton version -> state (READY, UNAVAILABLE, ...)


class ModelLifecycle:
    def __init__(
        self,
        registry: ModelRegistry,
        triton: ModelControl,
        repository: TritonRepository,
        records: DeploymentRecords,
        *,
        cache_dir: Path | None = None,
        preflight: bool = True,
        load_timeout_s: float = 600.0,
        retire_timeout_s: float = 30.0,
    ) -> None:
        self.registry = registry
        self.triton = triton
        self.repository = repository
        self.records = records
        self.cache_dir = cache_dir
        self.preflight = preflight  # load the weights here before Triton does (smoke_test)
        self.load_timeout_s = load_timeout_s
        self.retire_timeout_s = retire_timeout_s

    # -- registration ---------------------------------------------------------------------------
    def register(
        self,
        kind: ModelKind,
        path: Path | None = None,
        *,
        name: str | None = None,
        alias: str | None = None,
        description: str = "",
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersionInfo:
        """Register the weights at ``path`` (None: the packaged default) as a new version of
        ``kind``'s registered model; ``alias`` "champion" also promotes it. ``run_id`` links the
        version to the training run that produced it; ``tags`` join the packaging's."""
        with tempfile.TemporaryDirectory(prefix="rag-register-") as tmp:
            packaged = packaging.package_model(
                kind, path, Path(tmp) / "model", name=name, cache_dir=self.cache_dir
            )
            version = self.registry.create_version(
                kind.registered_name,
                packaged.directory,
                tags={**packaged.tags, **(tags or {})},
                description=description,
                run_id=run_id,
            )
        log.info(
            "registered %s version %s (%s)",
            version.name,
            version.version,
            packaged.tags[packaging.TAG_MODEL_VERSION],
        )
        if alias == CHAMPION:
            self.promote(kind, version.version)
        elif alias:
            self.registry.set_alias(version.name, alias, version.version)
        return self.registry.version(version.name, version.version)

    # -- promotion ------------------------------------------------------------------------------
    def promote(self, kind: ModelKind, version: str) -> Deployment:
        """Make ``version`` of ``kind`` the champion and serve it from Triton (see the module
        docstring). Promoting the version that already serves is a no-op."""
        name, model = kind.registered_name, kind.triton_model
        info = self.registry.version(name, version)
        with self.records.exclusive(model):
            serving = self.records.serving(model)
            if (
                serving is not None
                and serving.mlflow_version == info.version
                and serving.triton_version is not None
                and self.triton.model_ready(model, str(serving.triton_version))
            ):
                self._point_alias(name, info.version)
                log.info("%s version %s already serves as Triton %s", name, version, serving.triton_version)
                return serving
            earlier_alias = self.registry.alias(name, CHAMPION)
            self._point_alias(name, info.version)
            try:
                return self._deploy(kind, info)
            except Exception:
                self._restore_alias(name, earlier_alias, info.version)
                raise

    def rollback(self, kind: ModelKind) -> Deployment:
        """Serve again the MLflow version that served before the current one."""
        name, model = kind.registered_name, kind.triton_model
        current = self.records.serving(model)
        if current is None:
            raise FailedPrecondition(f"cannot roll back {name}: no version of it was ever promoted")
        previous = self.records.previous(model, other_than=current.mlflow_version)
        if previous is None:
            raise FailedPrecondition(
                f"cannot roll back {name}: version {current.mlflow_version} is the only one that ever served"
            )
        log.info(
            "rolling %s back from version %s to %s", name, current.mlflow_version, previous.mlflow_version
        )
        return self.promote(kind, previous.mlflow_version)

    def _deploy(self, kind: ModelKind, info: ModelVersionInfo) -> Deployment:
        model = kind.triton_model
        old = self._ready_versions(model)
        number = self.repository.next_version(model)
        deployment = self.records.start(
            model_name=model,
            kind=kind.value,
            registered_model=info.name,
            mlflow_version=info.version,
            triton_version=number,
            details={
                "model_version": info.tag(packaging.TAG_MODEL_VERSION),
                "sha256": info.tag(packaging.TAG_SHA256),
                "replaces_triton_versions": old,
            },
        )
        began = time.monotonic()
        loading = False
        try:
            self._export(kind, info, number)
            log.info("loading %s version %s (%s %s) into Triton", model, number, info.name, info.version)
            loading = True
            self.triton.load_model(model, timeout=self.load_timeout_s)
            self._wait(lambda: self.triton.model_ready(model, str(number)), self.load_timeout_s)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}"
            self.repository.remove(model, number)
            if loading:
                still = self._recover(model, number, old)
            else:
                still = f"version {', '.join(map(str, old))}" if old else "nothing (it was not loaded)"
            self.records.mark_failed(deployment, reason)
            message = (
                f"cannot promote {info.name} version {info.version}: {reason}; "
                f"Triton {model} keeps serving {still}"
            )
            log.error("%s", message)
            if isinstance(exc, RagError) and not isinstance(exc, InvalidInput):
                raise type(exc)(message) from None
            raise FailedPrecondition(message) from exc
        self._retire(model, number, old)
        deployment = self.records.mark_serving(deployment)
        if kind is ModelKind.EMBEDDER:
            status = self.records.mark_index_building(
                info.tag(packaging.TAG_MODEL_VERSION), int(info.tag(packaging.TAG_DIMENSION))
            )
            log.info("embedding index %s: %s", info.tag(packaging.TAG_MODEL_VERSION), status)
        log.info(
            "%s version %s serves as Triton %s version %s (%.1fs)",
            info.name,
            info.version,
            model,
            number,
            time.monotonic() - began,
        )
        return deployment

    def _export(self, kind: ModelKind, info: ModelVersionInfo, number: int) -> None:
        model = kind.triton_model
        with tempfile.TemporaryDirectory(prefix="rag-promote-") as tmp:
            downloaded = self.registry.download(info.name, info.version, Path(tmp))
            weights = packaging.weights_in(downloaded)
            exported = self.repository.export(
                model,
                weights,
                {
                    "kind": kind.value,
                    "registered_model": info.name,
                    "mlflow_version": info.version,
                    "model_version": info.tag(packaging.TAG_MODEL_VERSION),
                    "sha256": info.tag(packaging.TAG_SHA256),
                    "exported_at": datetime.now(UTC).isoformat(),
                },
            )
        if exported != number:  # the lock makes this impossible unless someone edits by hand
            self.repository.remove(model, exported)
            raise FailedPrecondition(f"version folder {number} of {model} appeared during the export")
        dimension = None
        if kind is ModelKind.EMBEDDER:
            dimension = self.repository.output_dims(model, "EMBEDDING")[-1]
        weights = self.repository.weights(model, number)
        packaging.check_weights(kind, weights, info.tags, embedding_dim=dimension)
        if self.preflight:
            packaging.smoke_test(kind, weights, cache_dir=self.cache_dir)

    def _retire(self, model: str, number: int, old: list[int]) -> None:
        """Wait until Triton has unloaded the versions ``number`` replaced, then delete them."""
        previous = [v for v in old if v != number]
        try:
            self._wait(
                lambda: not any(self._triton_states(model).get(v) in _BUSY for v in previous),
                self.retire_timeout_s,
            )
        except FailedPrecondition:
            log.warning(
                "Triton still serves %s versions %s beside %s; their folders stay", model, previous, number
            )
            return
        removed = self.repository.prune(model, keep=[number])
        if removed:
            log.info("retired %s versions %s", model, removed)

    def _recover(self, model: str, number: int, old: list[int]) -> str:
        """After Triton failed to load version ``number``: serve the old weights as ``number``.

        Triton keeps the old version serving, but it remembers ``number`` as failed (and with
        strict readiness reports the whole server not ready) until a version of that number
        loads. So the serving version is copied to ``number`` and loaded: the same weights,
        no downtime, readiness back. Returns what serves now, for the error message.
        """
        ready = self._ready_versions(model) or old
        if not ready:
            return (
                f"nothing (it served nothing before); Triton marks version {number} failed until a "
                f"version {number} loads: fix the weights and promote again (it reuses {number})"
            )
        source = max(ready)
        try:
            self.repository.copy_version(model, source, number)
            self.triton.load_model(model, timeout=self.load_timeout_s)
            self._wait(lambda: self.triton.model_ready(model, str(number)), self.load_timeout_s)
        except Exception as exc:
            log.error("re-serving %s version %s as %s failed: %s", model, source, number, exc)
            self.repository.remove(model, number)
            return f"version {source} (Triton still marks version {number} failed)"
        self._retire(model, number, [source])
        serving = self.records.serving(model)
        if serving is not None:
            self.records.move(serving, number, f"re-served as Triton version {number} after a failed load")
        return f"the same weights, re-served as version {number}"

    def _ready_versions(self, model: str) -> list[int]:
        return sorted(version for version, state in self._triton_states(model).items() if state == "READY")

    def _triton_states(self, model: str) -> dict[int, str]:
        """Triton's state of each version of ``model`` it knows, except those it unloaded."""
        return {
            int(entry["version"]): str(entry.get("state", ""))
            for entry in self.triton.repository_index()
            if entry.get("name") == model
            and str(entry.get("version", "")).isdigit()
            and entry.get("reason") != "unloaded"
        }

    def _point_alias(self, name: str, version: str) -> None:
        if self.registry.alias(name, CHAMPION) != version:
            self.registry.set_alias(name, CHAMPION, version)

    def _restore_alias(self, name: str, earlier: str | None, failed: str) -> None:
        try:
            if earlier is None:
                self.registry.delete_alias(name, CHAMPION)
            elif earlier != failed:
                self.registry.set_alias(name, CHAMPION, earlier)
        except RagError as exc:
            log.error("could not move %s@%s back to %s: %s", name, CHAMPION, earlier, exc)

    @staticmethod
    def _wait(ready: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                raise FailedPrecondition(f"Triton did not get there within {timeout_s:.0f}s")
            time.sleep(interval_s)

    # -- inspection -----------------------------------------------------------------------------
    def status(self, kind: ModelKind) -> ModelStatus:
        model = kind.triton_model
        states = self._triton_states(model)
        return ModelStatus(
            kind=kind,
            versions=self.registry.versions(kind.registered_name),
            champion=self.registry.alias(kind.registered_name, CHAMPION),
            serving=self.records.serving(model),
            triton=states,
        )


def build_lifecycle(settings: Settings, pool: ConnectionPool, triton: ModelControl) -> ModelLifecycle:
    """A lifecycle over the process's ``pool`` and Triton client, with the registry and the
    model repository ``settings`` name (the MLflow client is built on its first call)."""
    return ModelLifecycle(
        ModelRegistry(RegistryOptions(settings.MLFLOW_TRACKING_URI)),
        triton,
        TritonRepository(settings.TRITON_MODEL_REPOSITORY),
        DeploymentRecords(pool),
        cache_dir=settings.HF_CACHE_DIR / "gguf",
    )


@contextlib.contextmanager
def open_lifecycle(settings: Settings) -> Iterator[ModelLifecycle]:
    """A lifecycle with a pool and a Triton channel of its own (the CLI, the register_models
    DAG); closes both after."""
    from rag.adapters.postgres.pool import create_pool
    from rag.adapters.triton import BlockingTriton, TritonOptions

    pool = create_pool(settings, min_size=1, name="rag-models")
    try:
        with BlockingTriton(
            TritonOptions(settings.TRITON_GRPC_URL, timeout_s=settings.TRITON_TIMEOUT_S)
        ) as triton:
            yield build_lifecycle(settings, pool, triton)
    finally:
        pool.close()
