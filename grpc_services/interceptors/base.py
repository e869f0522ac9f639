"""Interceptors that run code around the whole handling of a call.

``grpc.aio`` interceptors only choose a handler; to see a call's outcome (its status code,
its latency, its exception) and to set per-call context the servicer can read, the handler's
behaviour itself is wrapped. A :class:`CallInterceptor` supplies an async context manager
entered before the servicer runs and left after it finishes: for a response stream, after its
last message. The first interceptor of the server's list is the outermost.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
import grpc.aio

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]
# Strings: grpc's handler type is generic only in its stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
# What an interceptor's intercept_service is given: it finds the next interceptor's handler.
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
# The async context manager a call's behaviour runs inside, made from the call's context.
Scope: TypeAlias = "Callable[[grpc.aio.ServicerContext[Any, Any]], AbstractAsyncContextManager[None]]"


@dataclass(frozen=True, slots=True)
class Call:
    """What an interceptor knows about a call."""

    # Full method name, e.g. "/rag.v1.SearchService/Search".
    method: str
    # Invocation metadata with lower-case keys (the last value wins for repeated keys).
    metadata: Mapping[str, str | bytes]
    context: grpc.aio.ServicerContext[Any, Any]

    @property
    def service(self) -> str:
        return self.method.lstrip("/").partition("/")[0]


class CallInterceptor(grpc.aio.ServerInterceptor, abc.ABC):
    @abc.abstractmethod
    def scope(self, call: Call) -> AbstractAsyncContextManager[None]:
        """Entered before the servicer runs, left after it finishes (or fails)."""

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED
            return None
        method: str = details.method
        metadata = {key.lower(): value for key, value in details.invocation_metadata or ()}

        def scope(context: grpc.aio.ServicerContext[Any, Any]) -> AbstractAsyncContextManager[None]:
            return self.scope(Call(method, metadata, context))

        return wrap_handler(handler, scope)


def handler_parts(
    handler: grpc.RpcMethodHandler[Any, Any],
) -> tuple[Callable[..., grpc.RpcMethodHandler[Any, Any]], Behavior]:
    """The factory that builds a handler of ``handler``'s kind, and its behaviour."""
    # The stubs type a handler's behaviours for the sync server (grpc.ServicerContext, optional
    # per kind); under grpc.aio they take a grpc.aio.ServicerContext and the one of its kind is set.
    factory: Callable[..., grpc.RpcMethodHandler[Any, Any]]
    behavior: Any
    if handler.request_streaming and handler.response_streaming:
        factory, behavior = grpc.stream_stream_rpc_method_handler, handler.stream_stream
    elif handler.request_streaming:
        factory, behavior = grpc.stream_unary_rpc_method_handler, handler.stream_unary
    elif handler.response_streaming:
        factory, behavior = grpc.unary_stream_rpc_method_handler, handler.unary_stream
    else:
        factory, behavior = grpc.unary_unary_rpc_method_handler, handler.unary_unary
    return factory, behavior


def wrap_handler(handler: Handler, scope: Scope) -> Handler:
    """``handler`` with its behaviour run inside ``scope(context)``."""
    factory, inner = handler_parts(handler)
    if not handler.response_streaming:
        behavior = _unary_response(inner, scope)
    elif inspect.isasyncgenfunction(inner):
        behavior = _response_generator(inner, scope)
    else:  # a coroutine that sends with `await context.write(...)` (e.g. health Watch)
        behavior = _response_writer(inner, scope)
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _unary_response(inner: Behavior, scope: Scope) -> Behavior:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async with scope(context):
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result

    return behavior


def _response_generator(inner: Behavior, scope: Scope) -> Behavior:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        async with scope(context), aclosing(inner(request, context)) as responses:
            async for response in responses:
                yield response

    return behavior


def _response_writer(inner: Behavior, scope: Scope) -> Behavior:
    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        async with scope(context):
            result = inner(request, context)
            if hasattr(result, "__aiter__"):
                async with aclosing(result) as responses:
                    async for response in responses:
                        await context.write(response)
            elif inspect.isawaitable(result):
                await result
            else:
                for response in result or ():
                    await context.write(response)

    return behavior
