"""``rag.v1.ModelService``: the models as MLflow, the deployment records and Triton see them.

ListModels and UpdateAllModels delegate to the model lifecycle (rag.modelops.lifecycle), the same
code the CLI, the MLflow webhook and the register_models DAG run, and translate its answer;
CleanupCache delegates to :mod:`rag.modelops.cache_cleanup`. WarmModels calls the Triton client
directly: load the model when it is not ready, then send it one request.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc.aio

from grpc_services.servicers.convert import timestamp
from grpc_services.validation import MAX_DAYS_OLD
from rag.adapters.triton import TritonClient
from rag.core.errors import InvalidInput, RagError
from rag.core.ports import Priority
from rag.modelops.cache_cleanup import remove_old_cache_entries
from rag.modelops.lifecycle import ModelLifecycle
from rag.modelops.packaging import CHAMPION, ModelKind
from rag.proto.rag.v1 import model_pb2, model_pb2_grpc

KIND_TO_PROTO = {
    ModelKind.EMBEDDER: model_pb2.MODEL_KIND_EMBEDDER,
    ModelKind.RERANKER: model_pb2.MODEL_KIND_RERANKER,
    ModelKind.GENERATOR: model_pb2.MODEL_KIND_GENERATOR,
}
STATE_TO_PROTO = {
    "READY": model_pb2.TRITON_MODEL_STATE_READY,
    "LOADING": model_pb2.TRITON_MODEL_STATE_LOADING,
    "UNLOADING": model_pb2.TRITON_MODEL_STATE_UNLOADING,
    "UNAVAILABLE": model_pb2.TRITON_MODEL_STATE_UNAVAILABLE,
}


def _model(lifecycle: ModelLifecycle, kind: ModelKind) -> model_pb2.Model:
    status = lifecycle.status(kind)
    ready = sorted((v for v, state in status.triton.items() if state == "READY"), reverse=True)
    if ready:
        state, version = model_pb2.TRITON_MODEL_STATE_READY, str(ready[0])
    elif status.triton:
        latest = max(status.triton)
        state = STATE_TO_PROTO.get(status.triton[latest], model_pb2.TRITON_MODEL_STATE_UNAVAILABLE)
        version = str(latest)
    else:
        state, version = model_pb2.TRITON_MODEL_STATE_NOT_LOADED, ""
    aliases = {alias: v.version for v in status.versions for alias in v.aliases}
    return model_pb2.Model(
        name=kind.triton_model,
        kind=KIND_TO_PROTO[kind],
        registered_model=kind.registered_name,
        versions=[
            model_pb2.ModelVersion(
                version=v.version, aliases=list(v.aliases), created_at=timestamp(v.created_at)
            )
            for v in status.versions
        ],
        aliases=aliases,
        triton_state=state,
        triton_version=version,
        serving_version=status.serving.mlflow_version if status.serving else "",
    )


class ModelServicer(model_pb2_grpc.ModelServiceServicer):
    def __init__(self, *, lifecycle: ModelLifecycle, triton: TritonClient, cache_dir: Path) -> None:
        self._lifecycle = lifecycle
        self._triton = triton
        self._cache_dir = cache_dir

    async def ListModels(
        self,
        request: model_pb2.ListModelsRequest,
        context: grpc.aio.ServicerContext[model_pb2.ListModelsRequest, model_pb2.ListModelsResponse],
    ) -> model_pb2.ListModelsResponse:
        def collect() -> list[model_pb2.Model]:
            return [_model(self._lifecycle, kind) for kind in ModelKind]

        return model_pb2.ListModelsResponse(models=await asyncio.to_thread(collect))

    async def WarmModels(
        self,
        request: model_pb2.WarmModelsRequest,
        context: grpc.aio.ServicerContext[model_pb2.WarmModelsRequest, model_pb2.WarmModelsResponse],
    ) -> model_pb2.WarmModelsResponse:
        """Load each model if needed and run one request through it, so the first caller's
        request does not pay for loading or for torch's first call."""
        names = list(request.model_names) or [ModelKind.EMBEDDER.value, ModelKind.GENERATOR.value]
        unknown = [n for n in names if n not in {k.value for k in ModelKind}]
        if unknown:
            raise InvalidInput(
                f"unknown model {unknown[0]!r}: one of embedder, reranker, generator", field="model_names"
            )
        results = []
        for name in names:
            began = time.perf_counter()
            try:
                if not await self._triton.model_ready(name):
                    await self._triton.load_model(name)
                if name == ModelKind.EMBEDDER.value:
                    await self._triton.embed(["warm up"], priority=Priority.BATCH)
                elif name == ModelKind.RERANKER.value:
                    await self._triton.rerank("warm up", ["warm up"], priority=Priority.BATCH)
                else:
                    async for _ in self._triton.generate("Hello", max_tokens=1):
                        pass
                ready, message = True, "ready"
            except RagError as exc:
                ready, message = False, str(exc)
            results.append(
                model_pb2.ModelWarmResult(
                    name=name, ready=ready, message=message, took_ms=(time.perf_counter() - began) * 1000
                )
            )
        return model_pb2.WarmModelsResponse(results=results)

    async def CleanupCache(
        self,
        request: model_pb2.CleanupCacheRequest,
        context: grpc.aio.ServicerContext[model_pb2.CleanupCacheRequest, model_pb2.CleanupCacheResponse],
    ) -> model_pb2.CleanupCacheResponse:
        """Delete model-cache entries not modified for ``days_old`` days (see
        :mod:`rag.modelops.cache_cleanup`)."""
        days = request.days_old or 30
        if not 1 <= days <= MAX_DAYS_OLD:
            raise InvalidInput(f"must be between 1 and {MAX_DAYS_OLD} days", field="days_old")
        cleaned = await asyncio.to_thread(remove_old_cache_entries, self._cache_dir, days)
        return model_pb2.CleanupCacheResponse(
            entries_removed=cleaned.entries_removed, bytes_freed=cleaned.bytes_freed
        )

    async def UpdateAllModels(
        self,
        request: model_pb2.UpdateAllModelsRequest,
        context: grpc.aio.ServicerContext[
            model_pb2.UpdateAllModelsRequest, model_pb2.UpdateAllModelsResponse
        ],
    ) -> model_pb2.UpdateAllModelsResponse:
        """Promote every model whose MLflow ``champion`` differs from the version serving."""

        def update() -> list[model_pb2.ModelUpdate]:
            updates = []
            lifecycle = self._lifecycle
            for kind in ModelKind:
                champion = lifecycle.registry.alias(kind.registered_name, CHAMPION)
                serving = lifecycle.records.serving(kind.triton_model)
                current = serving.mlflow_version if serving else ""
                if not champion or champion == current:
                    updates.append(
                        model_pb2.ModelUpdate(name=kind.value, from_version=current, to_version=current)
                    )
                    continue
                error = ""
                if not request.dry_run:
                    try:
                        lifecycle.promote(kind, champion)
                    except RagError as exc:
                        error = str(exc)
                updates.append(
                    model_pb2.ModelUpdate(
                        name=kind.value,
                        from_version=current,
                        to_version=champion,
                        changed=not request.dry_run and not error,
                        error=error,
                    )
                )
            return updates

        return model_pb2.UpdateAllModelsResponse(updates=await asyncio.to_thread(update))
