"""The one mapping of :mod:`rag.core.errors` to gRPC status codes."""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from rag.core import errors

STATUS_CODES: Mapping[type[errors.RagError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    # A server misconfiguration: the caller cannot fix it, so it is reported like a bug.
    errors.ConfigurationError: grpc.StatusCode.INTERNAL,
    errors.RagError: grpc.StatusCode.UNKNOWN,
}

# Codes whose message is about the server, not the request: logged, and hidden from callers.
SERVER_FAULTS = frozenset({grpc.StatusCode.INTERNAL})


def status_for(exc: errors.RagError) -> grpc.StatusCode:
    """The code of the most specific taxonomy class ``exc`` belongs to."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return grpc.StatusCode.UNKNOWN
