"""The tables the server relies on are complete and consistent."""

from __future__ import annotations

import importlib
import pkgutil

import grpc
import pytest

from grpc_services.errors import STATUS_CODES, status_for
from grpc_services.permissions import RPC_PERMISSIONS, check_covered, is_public
from rag.core import errors
from rag.core.auth import Permission
from rag.proto.rag import v1


def rag_v1_methods() -> set[str]:
    methods = set()
    for info in pkgutil.iter_modules(v1.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"rag.proto.rag.v1.{info.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                methods |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    return methods


def test_every_rag_v1_rpc_names_its_permission_and_nothing_else_is_listed() -> None:
    listed = {m for m in RPC_PERMISSIONS if m.startswith("/rag.v1.")}
    assert listed == rag_v1_methods()
    assert len(listed) == 16


def test_public_rpcs_are_exactly_health_reflection_login_and_refresh() -> None:
    public = {m for m in RPC_PERMISSIONS if is_public(m)}
    assert public == {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/rag.v1.AuthService/Login",
        "/rag.v1.AuthService/Refresh",
    }
    assert not is_public("/rag.v1.Unknown/Method")


@pytest.mark.parametrize(
    ("method", "permission"),
    [
        ("/rag.v1.DocumentService/Upload", Permission.DOCUMENTS_WRITE),
        ("/rag.v1.DocumentService/DeleteDocument", Permission.DOCUMENTS_DELETE),
        ("/rag.v1.DocumentService/ListDocuments", Permission.DOCUMENTS_READ),
        ("/rag.v1.SearchService/Search", Permission.QUERY_EXECUTE),
        ("/rag.v1.FeedbackService/GradeResult", Permission.LABELS_WRITE),
        ("/rag.v1.GenerationService/GenerateStream", Permission.GENERATE_EXECUTE),
        ("/rag.v1.ModelService/WarmModels", Permission.MODELS_MANAGE),
        ("/rag.v1.AdminService/GetStats", Permission.SYSTEM_ADMIN),
    ],
)
def test_permission_of_each_kind_of_rpc(method: str, permission: Permission) -> None:
    assert RPC_PERMISSIONS[method] is permission


def test_check_covered_names_missing_methods() -> None:
    check_covered(["/rag.v1.SearchService/Search"])
    with pytest.raises(errors.ConfigurationError, match=r"/rag.v1.New/Thing: add them to grpc_services"):
        check_covered(["/rag.v1.SearchService/Search", "/rag.v1.New/Thing"])


def test_every_error_class_maps_to_a_status() -> None:
    classes = {
        obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, errors.RagError)
    }
    for cls in classes - {errors.RagError}:  # each lands on a specific code, never UNKNOWN
        assert status_for(cls("x")) is not grpc.StatusCode.UNKNOWN, cls
    assert set(STATUS_CODES) <= classes
    assert status_for(errors.InvalidInput("x", field="top_k")) is grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(errors.Unauthenticated("x")) is grpc.StatusCode.UNAUTHENTICATED
    assert status_for(errors.PermissionDenied("x")) is grpc.StatusCode.PERMISSION_DENIED
    assert status_for(errors.Overloaded("x")) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_for(errors.Unavailable("x")) is grpc.StatusCode.UNAVAILABLE


def test_subclasses_map_like_their_taxonomy_class() -> None:
    class ChunkMissing(errors.NotFound):
        pass

    assert status_for(ChunkMissing("gone")) is grpc.StatusCode.NOT_FOUND
