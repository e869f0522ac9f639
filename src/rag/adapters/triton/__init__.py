"""Triton Inference Server: RAG System's models as typed calls over ``tritonclient.grpc.aio``.

``client`` holds the async client (deadlines, retries, the streaming generator), ``errors``
the translation of Triton's errors to :mod:`rag.core.errors`, and ``blocking`` the blocking
facade for Airflow tasks, CLIs and worker threads. The names callers use are exported here. It
imports the core and tritonclient, never a service.
"""

from __future__ import annotations

from rag.adapters.triton.blocking import BlockingTriton
from rag.adapters.triton.client import (
    EMBEDDER,
    GENERATOR,
    MAX_BATCH,
    RERANKER,
    FloatArray,
    TritonClient,
    TritonOptions,
)
from rag.adapters.triton.errors import translate

__all__ = [
    "EMBEDDER",
    "GENERATOR",
    "MAX_BATCH",
    "RERANKER",
    "BlockingTriton",
    "FloatArray",
    "TritonClient",
    "TritonOptions",
    "translate",
]
