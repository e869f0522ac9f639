"""Who may do what: roles, permissions and the authenticated caller (SPEC §4).

The role table here is the one the server enforces; the ``roles`` table of the database holds
the same rows for operators and SQL reports, and a test keeps the two equal.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rag.core.errors import InvalidInput, PermissionDenied


class Permission(enum.StrEnum):
    DOCUMENTS_READ = "documents:read"
    DOCUMENTS_WRITE = "documents:write"
    DOCUMENTS_DELETE = "documents:delete"
    QUERY_EXECUTE = "query:execute"
    GENERATE_EXECUTE = "generate:execute"
    MODELS_MANAGE = "models:manage"
    # Grade search results (relevance labels for training; rag.core.labels).
    LABELS_WRITE = "labels:write"
    # Implies every other permission.
    SYSTEM_ADMIN = "system:admin"


class Role(enum.StrEnum):
    ADMIN = "admin"
    USER = "user"
    READONLY = "readonly"


ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {
            Permission.DOCUMENTS_READ,
            Permission.DOCUMENTS_WRITE,
            Permission.DOCUMENTS_DELETE,
            Permission.MODELS_MANAGE,
            Permission.SYSTEM_ADMIN,
        }
    ),
    Role.USER: frozenset(
        {
            Permission.DOCUMENTS_READ,
            Permission.DOCUMENTS_WRITE,
            Permission.QUERY_EXECUTE,
            Permission.GENERATE_EXECUTE,
            Permission.LABELS_WRITE,
        }
    ),
    Role.READONLY: frozenset({Permission.DOCUMENTS_READ, Permission.QUERY_EXECUTE}),
}

# The same rules as the CHECK constraints of the `users` table, checked first so that the
# caller gets a message naming the field instead of a database error.
MAX_USERNAME_CHARS = 128
_USERNAME = re.compile(rf"[A-Za-z0-9_.@-]{{1,{MAX_USERNAME_CHARS}}}")
TENANT_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"  # also the DAGs' tenant Param (anchored there)
_TENANT = re.compile(TENANT_PATTERN)


def parse_role(value: str) -> Role:
    """The role named ``value``; :class:`InvalidInput` naming the known roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {value!r} (one of: {known})", field="role") from None


def validate_username(value: str) -> str:
    if not _USERNAME.fullmatch(value):
        raise InvalidInput(
            f"must be 1-{MAX_USERNAME_CHARS} characters of letters, digits and _ . @ -", field="username"
        )
    return value


def validate_tenant(value: str) -> str:
    if not _TENANT.fullmatch(value):
        raise InvalidInput(
            "must be 1-63 characters of lowercase letters, digits, _ and -, starting with a letter or digit",
            field="tenant",
        )
    return value


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of an operation; every tenant-scoped query filters on ``tenant``."""

    username: str
    tenant: str
    role: Role
    permissions: frozenset[Permission]
    # The account's token version when its token was issued; a token older than the account's
    # current version (disabled, role or tenant changed, revoked) is refused.
    token_version: int = 0

    @classmethod
    def of(cls, username: str, tenant: str, role: Role, *, token_version: int = 0) -> Principal:
        """A principal with the permissions of ``role``."""
        return cls(
            username=username,
            tenant=tenant,
            role=role,
            permissions=ROLE_PERMISSIONS[role],
            token_version=token_version,
        )

    def can(self, permission: Permission) -> bool:
        return Permission.SYSTEM_ADMIN in self.permissions or permission in self.permissions

    def require(self, permission: Permission, *, operation: str = "this operation") -> None:
        """Raise :class:`PermissionDenied` unless the principal holds ``permission``."""
        if not self.can(permission):
            raise PermissionDenied(
                f"role {self.role.value!r} lacks the permission {permission.value!r} "
                f"that {operation} needs; ask an administrator for a role that has it"
            )
