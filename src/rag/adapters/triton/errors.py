"""Triton's errors as :mod:`rag.core.errors`, with messages that say what to do."""

from __future__ import annotations

from tritonclient.utils import InferenceServerException

from rag.core.errors import DeadlineExceeded, InvalidInput, Overloaded, RagError, Unavailable


def translate(exc: InferenceServerException, *, model: str) -> RagError:
    """Triton's error -> the taxonomy, with a message that says what to do."""
    status = str(exc.status() or "")
    message = exc.message() or str(exc)
    if "UNAVAILABLE" in status:
        return Unavailable(f"Triton is unreachable ({message}); is the inference server running?")
    if "DEADLINE_EXCEEDED" in status or "Deadline Exceeded" in message:
        return DeadlineExceeded(f"Triton model {model} did not answer within the deadline")
    if "RESOURCE_EXHAUSTED" in status:
        return Overloaded(f"Triton model {model} is overloaded: {message}")
    if "INVALID_ARG" in status:
        return InvalidInput(f"Triton model {model} rejected the request: {message}")
    if (
        "unknown model" in message
        or "is not ready" in message
        or "no available versions" in message
        or "NOT_FOUND" in status
    ):
        # Transient for a caller: Triton (re)starting loads its models one by one (`make up`,
        # a promotion); a model missing for good shows in Triton's health and the message.
        return Unavailable(
            f"Triton model {model} is not loaded or not ready (loading after a restart?): {message};"
            " retry shortly"
        )
    return Unavailable(f"Triton model {model} failed: {message}")


def without_stub_traceback(message: str) -> str:
    """Triton's load error without the Python backend stub's traceback (``\n\nAt:\n ...``)."""
    return message.split("\n\nAt:", 1)[0].strip().rstrip(";").strip()
