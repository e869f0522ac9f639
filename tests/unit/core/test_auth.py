from __future__ import annotations

import pytest

from rag.core.auth import (
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
    parse_role,
    validate_tenant,
    validate_username,
)
from rag.core.errors import InvalidInput, PermissionDenied


def test_roles_have_the_permissions_of_the_spec() -> None:
    assert {p.value for p in ROLE_PERMISSIONS[Role.ADMIN]} == {
        "documents:read",
        "documents:write",
        "documents:delete",
        "models:manage",
        "system:admin",
    }
    assert {p.value for p in ROLE_PERMISSIONS[Role.USER]} == {
        "documents:read",
        "documents:write",
        "query:execute",
        "generate:execute",
        "labels:write",
    }
    assert {p.value for p in ROLE_PERMISSIONS[Role.READONLY]} == {"documents:read", "query:execute"}


@pytest.mark.parametrize("permission", list(Permission))
def test_system_admin_implies_every_permission(permission: Permission) -> None:
    admin = Principal.of("root", "acme", Role.ADMIN)
    assert admin.can(permission)
    admin.require(permission)


def test_admin_may_query_and_generate_through_system_admin_only() -> None:
    admin = Principal.of("root", "acme", Role.ADMIN)
    assert Permission.QUERY_EXECUTE not in admin.permissions
    assert admin.can(Permission.QUERY_EXECUTE)
    assert admin.can(Permission.GENERATE_EXECUTE)


@pytest.mark.parametrize(
    ("role", "allowed", "denied"),
    [
        (Role.USER, Permission.GENERATE_EXECUTE, Permission.DOCUMENTS_DELETE),
        (Role.USER, Permission.DOCUMENTS_WRITE, Permission.MODELS_MANAGE),
        (Role.READONLY, Permission.QUERY_EXECUTE, Permission.DOCUMENTS_WRITE),
        (Role.READONLY, Permission.DOCUMENTS_READ, Permission.GENERATE_EXECUTE),
        (Role.READONLY, Permission.DOCUMENTS_READ, Permission.SYSTEM_ADMIN),
        (Role.USER, Permission.LABELS_WRITE, Permission.SYSTEM_ADMIN),
        (Role.READONLY, Permission.QUERY_EXECUTE, Permission.LABELS_WRITE),
    ],
)
def test_roles_without_system_admin_get_exactly_their_permissions(
    role: Role, allowed: Permission, denied: Permission
) -> None:
    principal = Principal.of("bob", "acme", role)
    principal.require(allowed)
    assert not principal.can(denied)
    with pytest.raises(PermissionDenied, match=rf"role '{role.value}' lacks the permission '{denied.value}'"):
        principal.require(denied, operation="rag.v1.X/Y")


def test_permission_denied_names_the_operation() -> None:
    with pytest.raises(PermissionDenied, match=r"that rag.v1.AdminService/GetStats needs"):
        Principal.of("ro", "acme", Role.READONLY).require(
            Permission.SYSTEM_ADMIN, operation="rag.v1.AdminService/GetStats"
        )


def test_parse_role_names_the_known_roles() -> None:
    assert parse_role("readonly") is Role.READONLY
    with pytest.raises(InvalidInput, match=r"role: unknown role 'root' \(one of: admin, user, readonly\)"):
        parse_role("root")


@pytest.mark.parametrize("name", ["alice", "a.b@example.com", "x_y-z", "A" * 128])
def test_good_usernames(name: str) -> None:
    assert validate_username(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "ä", "A" * 129, "x;drop"])
def test_bad_usernames_name_the_field(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"^username: "):
        validate_username(name)


@pytest.mark.parametrize("tenant", ["acme", "a", "9lives", "a-b_c", "a" * 63])
def test_good_tenants(tenant: str) -> None:
    assert validate_tenant(tenant) == tenant


@pytest.mark.parametrize("tenant", ["", "Acme", "-acme", "_x", "a b", "a" * 64])
def test_bad_tenants_name_the_field(tenant: str) -> None:
    with pytest.raises(InvalidInput, match=r"^tenant: "):
        validate_tenant(tenant)
