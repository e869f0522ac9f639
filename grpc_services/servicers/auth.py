"""``rag.v1.AuthService``: Login and Refresh (public RPCs).

Login is throttled per username and per client address (the address the rate-limit
interceptor resolved, trusted proxies' forwarding headers included) when the
:class:`~rag.core.authentication.Authenticator` has a throttle.
"""

from __future__ import annotations

import grpc.aio

from grpc_services.context import annotate_call, current_client_address
from rag.core.authentication import Authenticator
from rag.proto.rag.v1 import auth_pb2, auth_pb2_grpc

TOKEN_TYPE = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def Login(
        self,
        request: auth_pb2.LoginRequest,
        context: grpc.aio.ServicerContext[auth_pb2.LoginRequest, auth_pb2.LoginResponse],
    ) -> auth_pb2.LoginResponse:
        annotate_call(user=request.username[:128])  # who tried, for the access log
        session = await self._auth.login(request.username, request.password, client=current_client_address())
        annotate_call(tenant=session.principal.tenant)
        return auth_pb2.LoginResponse(
            access_token=session.access.token,
            access_token_expires_at=session.access.expires_at,
            refresh_token=session.refresh.token,
            refresh_token_expires_at=session.refresh.expires_at,
            token_type=TOKEN_TYPE,
            role=session.principal.role.value,
            tenant=session.principal.tenant,
        )

    async def Refresh(
        self,
        request: auth_pb2.RefreshRequest,
        context: grpc.aio.ServicerContext[auth_pb2.RefreshRequest, auth_pb2.RefreshResponse],
    ) -> auth_pb2.RefreshResponse:
        principal, access = await self._auth.refresh(request.refresh_token)
        annotate_call(user=principal.username, tenant=principal.tenant)
        return auth_pb2.RefreshResponse(
            access_token=access.token, access_token_expires_at=access.expires_at, token_type=TOKEN_TYPE
        )
