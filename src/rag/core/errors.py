"""The one error taxonomy of RAG System.

Every layer raises these; the gRPC edge maps them to status codes in exactly one place and the
CLIs print them as one line. Messages are written for the caller: they say what to fix.
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error RAG System raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(RagError):
    """The caller sent something malformed; the message names the field and the rule."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class NotFound(RagError):
    """The named thing does not exist (or is not visible to the caller's tenant)."""


class AlreadyExists(RagError):
    """The thing to create exists already."""


class Unauthenticated(RagError):
    """No credentials, or credentials that are invalid or expired."""


class PermissionDenied(RagError):
    """Valid credentials that lack the permission the operation needs."""


class Overloaded(RagError):
    """A rate limit or queue is full; retry later.

    ``retry_after_s``, when known, is how long the caller should wait; the message says it too
    ("retry in N s") and the gRPC edge sends it as the ``grpc-retry-pushback-ms`` trailer.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(RagError):
    """A dependency (database, object store, Triton, ...) cannot be reached right now."""


class DeadlineExceeded(RagError):
    """The operation ran past its deadline."""


class FailedPrecondition(RagError):
    """The system is not in a state that allows the operation (e.g. model not ready)."""


class ConfigurationError(RagError):
    """A setting is missing or wrong; the message names the variable and the fix."""


class UnprocessableDocument(InvalidInput):
    """A document that cannot be parsed; the message is its quarantine reason."""
