"""The one table of what each RPC needs (SPEC §4: "each RPC names the permission it needs").

``None`` marks a public RPC (no token needed). A method missing from the table is refused,
and :func:`check_covered` makes the server refuse to start with a servicer whose service has
a method missing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rag.core.auth import Permission
from rag.core.errors import ConfigurationError

PUBLIC = None

# The services every gRPC server of ours carries besides rag.v1: health and reflection (grpcurl
# without proto files).
HEALTH_AND_REFLECTION = (
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
)

RPC_PERMISSIONS: Mapping[str, Permission | None] = {
    # Health checks and reflection are public.
    **dict.fromkeys(HEALTH_AND_REFLECTION, PUBLIC),
    # How a caller gets a token.
    "/rag.v1.AuthService/Login": PUBLIC,
    "/rag.v1.AuthService/Refresh": PUBLIC,
    "/rag.v1.DocumentService/Upload": Permission.DOCUMENTS_WRITE,
    "/rag.v1.DocumentService/GetDocument": Permission.DOCUMENTS_READ,
    "/rag.v1.DocumentService/ListDocuments": Permission.DOCUMENTS_READ,
    "/rag.v1.DocumentService/DeleteDocument": Permission.DOCUMENTS_DELETE,
    "/rag.v1.SearchService/Search": Permission.QUERY_EXECUTE,
    "/rag.v1.FeedbackService/GradeResult": Permission.LABELS_WRITE,
    "/rag.v1.GenerationService/Generate": Permission.GENERATE_EXECUTE,
    "/rag.v1.GenerationService/GenerateStream": Permission.GENERATE_EXECUTE,
    "/rag.v1.ModelService/ListModels": Permission.MODELS_MANAGE,
    "/rag.v1.ModelService/WarmModels": Permission.MODELS_MANAGE,
    "/rag.v1.ModelService/CleanupCache": Permission.MODELS_MANAGE,
    "/rag.v1.ModelService/UpdateAllModels": Permission.MODELS_MANAGE,
    "/rag.v1.AdminService/SystemCleanup": Permission.SYSTEM_ADMIN,
    "/rag.v1.AdminService/GetStats": Permission.SYSTEM_ADMIN,
}


def is_public(method: str) -> bool:
    return method in RPC_PERMISSIONS and RPC_PERMISSIONS[method] is PUBLIC


def check_covered(methods: Iterable[str]) -> None:
    """Raise :class:`ConfigurationError` naming every method the table lacks."""
    missing = sorted(set(methods) - RPC_PERMISSIONS.keys())
    if missing:
        raise ConfigurationError(
            f"no permission defined for {', '.join(missing)}: add them to grpc_services/permissions.py"
        )
