"""Turns exceptions into gRPC statuses, through the one table in :mod:`grpc_services.errors`.

A :class:`~rag.core.errors.RagError` becomes its status with its message (written for the
caller). Anything else is a bug: it is logged with its traceback and the caller gets INTERNAL
with a generic message and the request id, never the exception text. An
:class:`~rag.core.errors.Overloaded` with ``retry_after_s`` also carries the retry hint as the
``grpc-retry-pushback-ms`` trailer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import grpc.aio

from grpc_services.context import current_request_id
from grpc_services.errors import SERVER_FAULTS, status_for
from grpc_services.interceptors.base import Call, CallInterceptor
from rag.core.errors import Overloaded, RagError

log = logging.getLogger(__name__)

RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"


def internal_message() -> str:
    return f"internal error; quote request id {current_request_id() or '-'} when reporting it"


def retry_hint(exc: RagError) -> tuple[tuple[str, str], ...]:
    """The ``grpc-retry-pushback-ms`` trailer (gRFC A6: honoured by a client's retry policy) of
    an :class:`Overloaded` that says when to come back; nothing otherwise."""
    if isinstance(exc, Overloaded) and exc.retry_after_s is not None:
        return ((RETRY_PUSHBACK_KEY, str(max(0, math.ceil(exc.retry_after_s * 1000)))),)
    return ()


class ErrorMappingInterceptor(CallInterceptor):
    @asynccontextmanager
    async def scope(self, call: Call) -> AsyncIterator[None]:
        try:
            yield
        except grpc.aio.AbortError:  # the servicer chose its status itself
            raise
        except RagError as exc:
            code = status_for(exc)
            if code in SERVER_FAULTS:
                log.error("%s failed: %s", call.method, exc, exc_info=True)
                await call.context.abort(code, internal_message())
            if code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}:
                log.warning("%s: %s", call.method, exc)
            await call.context.abort(code, str(exc), trailing_metadata=retry_hint(exc))
        except NotImplementedError:  # a generated base method the servicer does not override
            await call.context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{call.method} is not implemented")
        except Exception:
            log.exception("%s failed with an unexpected error", call.method)
            await call.context.abort(grpc.StatusCode.INTERNAL, internal_message())
