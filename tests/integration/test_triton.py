"""The stack's real tritonserver serves the repository's models through the typed client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from rag.adapters.triton import TritonClient, TritonOptions
from rag.core.errors import Unavailable
from rag.core.ports import Priority
from rag.settings import Settings

pytestmark = pytest.mark.integration


def test_embedder_is_loaded_and_matches_in_process(settings: Settings) -> None:
    from rag.models.embedding import Embedder

    texts = [f"Aspirin lowers the risk of heart attack in trial {i}." for i in range(40)]

    async def run() -> np.ndarray[Any, Any]:
        async with TritonClient(TritonOptions(settings.TRITON_GRPC_URL)) as client:
            assert await client.model_ready("embedder")
            return await client.embed(texts, priority=Priority.BATCH)

    served = asyncio.run(run())
    local = Embedder().encode(texts)
    assert served.shape == (40, 384)
    cosine = np.sum(served * local, axis=1)
    assert float(cosine.min()) >= 0.9999
    assert np.allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)


def test_triton_down_is_unavailable_within_the_deadline() -> None:
    async def run() -> None:
        async with TritonClient(
            TritonOptions("127.0.0.1:1", timeout_s=2.0, max_retries=2, backoff_s=0.05)
        ) as client:
            await client.embed(["x"])

    began = time.monotonic()
    with pytest.raises(Unavailable, match="Triton is unreachable"):
        asyncio.run(run())
    assert time.monotonic() - began < 5
