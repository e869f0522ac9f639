"""Authentication and authorization of every call (SPEC §4).

Public RPCs (health, reflection, Login, Refresh) pass. Every other call needs
``authorization: Bearer <access token>``; a missing, malformed, expired, forged, wrong-issuer
or wrong-audience token, a refresh token, or a token revoked since it was issued (account
disabled, role or tenant changed, ``rag users revoke``), is UNAUTHENTICATED; a valid token whose role lacks
the permission ``RPC_PERMISSIONS`` names for the method is PERMISSION_DENIED. The caller is
then available to the servicer through :func:`grpc_services.context.current_principal`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from grpc_services.context import annotate_call, principal_scope
from grpc_services.interceptors.base import Call, CallInterceptor
from grpc_services.permissions import RPC_PERMISSIONS, is_public
from rag.core.authentication import AccessTokens
from rag.core.errors import PermissionDenied, Unauthenticated

_HOW = "send the metadata 'authorization: Bearer <access token>' (get one from AuthService/Login)"


def bearer_token(value: str | bytes | None) -> str:
    """The token of an ``authorization`` header value; :class:`Unauthenticated` otherwise."""
    if value is None:
        raise Unauthenticated(f"no access token: {_HOW}")
    if not isinstance(value, str):
        raise Unauthenticated(f"malformed authorization metadata: {_HOW}")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(f"the authorization metadata is not a bearer token: {_HOW}")
    return token.strip()


class AuthInterceptor(CallInterceptor):
    def __init__(self, tokens: AccessTokens) -> None:
        self._tokens = tokens

    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[None]:
        if is_public(call.method):
            yield
            return
        principal = await self._tokens.authenticate(bearer_token(call.metadata.get("authorization")))
        permission = RPC_PERMISSIONS.get(call.method)
        if permission is None:  # not in the table: refused rather than guessed
            raise PermissionDenied(f"{call.method} is not open to any role")
        annotate_call(user=principal.username, tenant=principal.tenant)
        principal.require(permission, operation=call.method.lstrip("/"))
        with principal_scope(principal):
            yield
