"""The async Triton client behind a blocking facade, for Airflow tasks, CLIs and threads.

:class:`BlockingTriton` either owns its client (one event loop in a daemon thread, and so one
gRPC channel, for its lifetime) or lends blocking calls to a client that already runs on an
event loop of the process (:meth:`BlockingTriton.sharing`: the gRPC server's, for the model
lifecycle its worker threads run), so a process holds one channel either way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from rag.adapters.triton.client import FloatArray, TritonClient, TritonOptions
from rag.core.ports import Priority

T = TypeVar("T")


class BlockingTriton:
    """Blocking calls to a :class:`TritonClient`. Never call it on the client's own loop: the
    call would wait for the loop it blocks."""

    def __init__(self, options: TritonOptions) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = threading.Thread(
            target=self._loop.run_forever, name="triton-client", daemon=True
        )
        self._thread.start()
        self.client: TritonClient = self._run(self._create(options))

    @classmethod
    def sharing(cls, client: TritonClient, loop: asyncio.AbstractEventLoop) -> BlockingTriton:
        """Blocking calls to ``client``, which runs on ``loop`` (another thread's); closing the
        facade leaves the client and the loop to their owner."""
        facade = cls.__new__(cls)
        facade._loop, facade._thread, facade.client = loop, None, client
        return facade

    @staticmethod
    async def _create(options: TritonOptions) -> TritonClient:
        return TritonClient(options)

    def _run(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    def call(self, coroutine: Awaitable[T]) -> T:
        """Run ``coroutine`` on the client's loop and wait for it: for async services built on
        :attr:`client` (an Airflow task searching through the retrieval service)."""
        return self._run(coroutine)

    def embed(
        self, texts: Sequence[str], *, priority: Priority = Priority.BATCH, timeout: float | None = None
    ) -> FloatArray:
        return self._run(self.client.embed(texts, priority=priority, timeout=timeout))

    def rerank(
        self,
        query: str,
        passages: Sequence[str],
        *,
        priority: Priority = Priority.BATCH,
        timeout: float | None = None,
    ) -> FloatArray:
        return self._run(self.client.rerank(query, passages, priority=priority, timeout=timeout))

    def model_ready(self, model: str, version: str = "") -> bool:
        return self._run(self.client.model_ready(model, version))

    def repository_index(self) -> list[dict[str, Any]]:
        return self._run(self.client.repository_index())

    def model_metadata(self, model: str) -> dict[str, Any]:
        return self._run(self.client.model_metadata(model))

    def load_model(self, model: str, timeout: float | None = 600.0) -> None:
        self._run(self.client.load_model(model, timeout=timeout))

    def close(self) -> None:
        """Close the client and stop its loop when this facade owns them; else nothing."""
        if self._thread is not None and self._loop.is_running():
            self._run(self.client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> BlockingTriton:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
