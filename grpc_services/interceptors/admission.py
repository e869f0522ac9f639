"""Admission control: at most N calls of each RPC class in progress at once in this process.

One more is refused at once with RESOURCE_EXHAUSTED (:class:`~rag.core.errors.Overloaded`,
mapped by the error interceptor) whose message names the class and its setting and says
"retry in N s", with the same hint in the ``grpc-retry-pushback-ms`` trailer. Refusing is
cheap and queues nothing, so the calls that are admitted keep the latency they have at
capacity however many more arrive. A streamed call holds its slot until its last message is
sent, or until it fails or is cancelled.

Health checks and reflection are never refused (probes must always get an answer; the
metrics endpoint is a separate HTTP server). Upload is bounded where the bytes are received,
by the same :class:`~rag.core.throttle.Slots` (``UPLOAD_MAX_CONCURRENT``, in
:class:`~rag.ingestion.intake.UploadSlots`). :func:`check_classified` makes the server refuse
to start with a method missing from :data:`RPC_CLASSES`.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

from grpc_services.interceptors.base import Call, CallInterceptor
from grpc_services.metrics import GrpcMetrics
from grpc_services.permissions import HEALTH_AND_REFLECTION
from rag.core.errors import ConfigurationError, Overloaded
from rag.core.throttle import Slots
from rag.settings import Settings


class RpcClass(enum.StrEnum):
    SEARCH = "search"
    GENERATE = "generate"
    DOCUMENTS = "documents"
    ADMIN = "admin"
    AUTH = "auth"


# Not admission-controlled: see the module docstring.
UNBOUNDED = None

RPC_CLASSES: Mapping[str, RpcClass | None] = {
    **dict.fromkeys(HEALTH_AND_REFLECTION, UNBOUNDED),
    "/rag.v1.DocumentService/Upload": UNBOUNDED,  # UPLOAD_MAX_CONCURRENT, in the intake
    "/rag.v1.AuthService/Login": RpcClass.AUTH,
    "/rag.v1.AuthService/Refresh": RpcClass.AUTH,
    "/rag.v1.DocumentService/GetDocument": RpcClass.DOCUMENTS,
    "/rag.v1.DocumentService/ListDocuments": RpcClass.DOCUMENTS,
    "/rag.v1.DocumentService/DeleteDocument": RpcClass.DOCUMENTS,
    "/rag.v1.SearchService/Search": RpcClass.SEARCH,
    # One small transaction, like reading a document.
    "/rag.v1.FeedbackService/GradeResult": RpcClass.DOCUMENTS,
    "/rag.v1.GenerationService/Generate": RpcClass.GENERATE,
    "/rag.v1.GenerationService/GenerateStream": RpcClass.GENERATE,
    "/rag.v1.ModelService/ListModels": RpcClass.ADMIN,
    "/rag.v1.ModelService/WarmModels": RpcClass.ADMIN,
    "/rag.v1.ModelService/CleanupCache": RpcClass.ADMIN,
    "/rag.v1.ModelService/UpdateAllModels": RpcClass.ADMIN,
    "/rag.v1.AdminService/SystemCleanup": RpcClass.ADMIN,
    "/rag.v1.AdminService/GetStats": RpcClass.ADMIN,
}

# The setting that bounds each class.
SETTINGS: Mapping[RpcClass, str] = {
    RpcClass.SEARCH: "SEARCH_MAX_CONCURRENT",
    RpcClass.GENERATE: "GENERATE_MAX_CONCURRENT",
    RpcClass.DOCUMENTS: "DOCUMENTS_MAX_CONCURRENT",
    RpcClass.ADMIN: "ADMIN_MAX_CONCURRENT",
    RpcClass.AUTH: "AUTH_MAX_CONCURRENT",
}


def check_classified(methods: Iterable[str]) -> None:
    """Raise :class:`ConfigurationError` naming every method :data:`RPC_CLASSES` lacks."""
    missing = sorted(set(methods) - RPC_CLASSES.keys())
    if missing:
        raise ConfigurationError(
            f"no admission class for {', '.join(missing)}: "
            "add them to RPC_CLASSES in grpc_services/interceptors/admission.py"
        )


def admission_slots(settings: Settings) -> dict[RpcClass, Slots]:
    """One :class:`Slots` per class, sized by its setting."""
    return {
        rpc_class: Slots(
            int(getattr(settings, setting)),
            what=f"{rpc_class} calls",
            setting=setting,
            retry_after_s=settings.OVERLOAD_RETRY_AFTER_S,
        )
        for rpc_class, setting in SETTINGS.items()
    }


class AdmissionInterceptor(CallInterceptor):
    def __init__(self, slots: Mapping[RpcClass, Slots], metrics: GrpcMetrics | None = None) -> None:
        self.slots = dict(slots)
        self._metrics = metrics
        if metrics is not None:
            for rpc_class in self.slots:  # every class on /metrics from the start, at 0
                metrics.admitted_in_flight.labels(rpc_class.value)
                metrics.admission_rejected.labels(rpc_class.value)

    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[None]:
        rpc_class = RPC_CLASSES.get(call.method)
        slots = self.slots.get(rpc_class) if rpc_class is not None else None
        if rpc_class is None or slots is None:
            yield
            return
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(slots.take())
            except Overloaded:
                if self._metrics is not None:
                    self._metrics.admission_rejected.labels(rpc_class.value).inc()
                raise
            if self._metrics is not None:
                in_flight = self._metrics.admitted_in_flight.labels(rpc_class.value)
                in_flight.inc()
                held.callback(in_flight.dec)
            yield
