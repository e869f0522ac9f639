"""BlockingTriton.sharing: blocking calls run on the owner's loop and client; closing leaves them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from rag.adapters.triton import BlockingTriton, TritonClient, TritonOptions


class RecordingClient(TritonClient):
    """A client that answers without a server and records the loop each call ran on."""

    def __init__(self) -> None:
        self.options = TritonOptions("127.0.0.1:1")
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.closed = False

    async def model_ready(self, model: str, version: str = "", timeout: float | None = 2.0) -> bool:
        self.loops.append(asyncio.get_running_loop())
        return model == "embedder"

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def owner_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def test_a_shared_facade_calls_the_owners_client_on_the_owners_loop(
    owner_loop: asyncio.AbstractEventLoop,
) -> None:
    client = RecordingClient()
    facade = BlockingTriton.sharing(client, owner_loop)
    assert facade.client is client
    assert facade.model_ready("embedder") and not facade.model_ready("generator")
    assert client.loops == [owner_loop, owner_loop]


def test_closing_a_shared_facade_leaves_the_client_and_the_loop_to_their_owner(
    owner_loop: asyncio.AbstractEventLoop,
) -> None:
    client = RecordingClient()
    with BlockingTriton.sharing(client, owner_loop) as facade:
        facade.model_ready("embedder")
    assert not client.closed and owner_loop.is_running()
    assert BlockingTriton.sharing(client, owner_loop).model_ready("embedder")  # still usable
