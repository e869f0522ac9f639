"""Applies :mod:`grpc_services.validation` to every request message, before the servicer sees it.

The innermost interceptor: a call is authenticated and rate-limited first, and the
:class:`~rag.core.errors.InvalidInput` it raises goes through the error mapping like any
other. Unary requests are checked before the servicer is called; a client stream is checked
message by message as the servicer reads it. The handler's deserializer is replaced by a
lenient one, so a request that does not parse is refused here (INVALID_ARGUMENT) instead of
by grpc.aio (UNKNOWN).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import grpc
import grpc.aio

from grpc_services.interceptors.base import Behavior, Continuation, Handler, handler_parts
from grpc_services.validation import lenient_deserializer, validate


class ValidationInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(details)
        return None if handler is None else validating_handler(handler)


def validating_handler(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with every request message validated and a lenient deserializer."""
    factory, inner = handler_parts(handler)
    check: Callable[[Any], Any] = _CheckedStream if handler.request_streaming else _checked
    if inspect.isasyncgenfunction(inner):
        behavior = _generator(inner, check)
    elif inspect.iscoroutinefunction(inner):
        behavior = _coroutine(inner, check)
    else:
        behavior = _plain(inner, check)
    return factory(
        behavior,
        request_deserializer=lenient_deserializer(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


def _checked(request: Any) -> Any:
    validate(request)
    return request


class _CheckedStream:
    """The request stream, each message validated as the servicer takes it."""

    def __init__(self, requests: AsyncIterable[Any]) -> None:
        self._requests = aiter(requests)

    def __aiter__(self) -> _CheckedStream:
        return self

    async def __anext__(self) -> Any:
        request = await anext(self._requests)
        validate(request)
        return request


def _coroutine(inner: Behavior, check: Callable[[Any], Any]) -> Behavior:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await inner(check(request), context)

    return behavior


def _plain(inner: Behavior, check: Callable[[Any], Any]) -> Behavior:
    # Returns what the servicer returns (an iterator for a response stream, say): the outer
    # interceptors of grpc_services.interceptors.base await or drain it.
    def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return inner(check(request), context)

    return behavior


def _generator(inner: Behavior, check: Callable[[Any], Any]) -> Behavior:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        async with aclosing(inner(check(request), context)) as responses:
            async for response in responses:
                yield response

    return behavior
