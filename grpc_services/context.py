"""Per-call state the interceptors set for servicers and logs: the caller and the request id.

Servicers call :func:`current_principal` to learn who is calling (and so which tenant to
scope every query to); the auth interceptor sets it before the servicer runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TypeVar

from rag.core.auth import Principal
from rag.core.errors import Unauthenticated

_principal: ContextVar[Principal | None] = ContextVar("rag_principal", default=None)
_request_id: ContextVar[str | None] = ContextVar("rag_request_id", default=None)
_call_fields: ContextVar[dict[str, object] | None] = ContextVar("rag_call_fields", default=None)
_client_address: ContextVar[str | None] = ContextVar("rag_client_address", default=None)

T = TypeVar("T")


def current_principal() -> Principal:
    """The authenticated caller of the current RPC.

    Raises :class:`Unauthenticated` outside an authenticated RPC (e.g. in a public one).
    """
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("this call carries no authenticated caller")
    return principal


def current_principal_or_none() -> Principal | None:
    """The authenticated caller of the current RPC, or ``None`` (public RPC, or outside one)."""
    return _principal.get()


def current_request_id() -> str | None:
    """The id of the current RPC (``x-request-id``), or ``None`` outside one."""
    return _request_id.get()


def current_client_address() -> str | None:
    """The caller's address (behind a trusted proxy, the client it names); ``None`` outside an RPC."""
    return _client_address.get()


def client_address_scope(address: str) -> AbstractContextManager[None]:
    """Within the block, :func:`current_client_address` is ``address``."""
    return _bound(_client_address, address)


def principal_scope(principal: Principal) -> AbstractContextManager[None]:
    """Within the block, :func:`current_principal` is ``principal``."""
    return _bound(_principal, principal)


def request_id_scope(request_id: str) -> AbstractContextManager[None]:
    """Within the block, :func:`current_request_id` is ``request_id``."""
    return _bound(_request_id, request_id)


@contextmanager
def _bound(variable: ContextVar[T | None], value: T) -> Iterator[None]:
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def annotate_call(**fields: object) -> None:
    """Add fields to the current RPC's access-log line (e.g. ``result_count=5``)."""
    record = _call_fields.get()
    if record is not None:
        record.update(fields)


@contextmanager
def call_fields_scope() -> Iterator[dict[str, object]]:
    """Collect :func:`annotate_call` fields for the access log of one RPC."""
    record: dict[str, object] = {}
    token = _call_fields.set(record)
    try:
        yield record
    finally:
        _call_fields.reset(token)
