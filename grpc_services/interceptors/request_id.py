"""Gives every call a request id: the caller's ``x-request-id`` when it is sane, else a new one.

The id is returned in the trailing metadata, tagged onto every log line of the call, and
quoted in INTERNAL errors so a report can be matched with the logs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from grpc_services.context import request_id_scope
from grpc_services.interceptors.base import Call, CallInterceptor

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


class RequestIdInterceptor(CallInterceptor):
    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[None]:
        given = call.metadata.get(HEADER)
        request_id = given if isinstance(given, str) and _SANE.fullmatch(given) else uuid.uuid4().hex
        call.context.set_trailing_metadata(((HEADER, request_id),))
        with request_id_scope(request_id):
            yield
        # A servicer that set trailing metadata of its own replaced ours: add the id back.
        trailing = tuple(call.context.trailing_metadata() or ())
        if all(key != HEADER for key, _ in trailing):
            call.context.set_trailing_metadata((*trailing, (HEADER, request_id)))
