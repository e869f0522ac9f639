"""Typed client for RAG System's Triton models over ``tritonclient.grpc.aio``.

One instance (one gRPC channel) per process, created at start-up and passed in. Every call has
a deadline; UNAVAILABLE is retried with exponential backoff for at most ``retry_window_s`` (so a
call answers Unavailable within that while Triton is down); Triton's errors become
:mod:`rag.core.errors`. The channel reconnects by itself: gRPC's reconnect backoff is capped at
``reconnect_backoff_max_s`` (gRPC's default lets it grow to 120 s, which kept a client failing
for minutes after Triton was back), and a retry waits for the channel to be ready again, so once
Triton is back the first call succeeds.

Each call carries a :class:`Priority` (SPEC §2: interactive queries, then generation, then batch
ingestion), but Triton honours it only for a model whose config has priority levels, and the
rendered configs have none by default: the reranker and generator never do, and the embedder
only with ``--embedder-priority-levels N`` (with any, Triton 2.51 held lone requests ~500 ms; see
``triton_models/embedder/config.pbtxt.tmpl``). So today requests are served in arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio
from numpy.typing import NDArray
from tritonclient.grpc import MAX_GRPC_MESSAGE_SIZE, InferInput, InferRequestedOutput, InferResult
from tritonclient.grpc._utils import _get_inference_request
from tritonclient.utils import InferenceServerException

from rag.adapters.triton.errors import translate, without_stub_traceback
from rag.core.errors import DeadlineExceeded, FailedPrecondition, RagError, Unavailable
from rag.core.ports import Priority

log = logging.getLogger(__name__)
T = TypeVar("T")
FloatArray = NDArray[np.float32]

EMBEDDER = "embedder"
RERANKER = "reranker"
GENERATOR = "generator"
MAX_BATCH = 32  # the embedder's and reranker's max_batch_size
# How long a search trusts what it last learnt of the reranker being loaded.
RERANKER_STATE_TTL_S = 5.0


@dataclass(frozen=True)
class TritonOptions:
    url: str
    timeout_s: float = 30.0
    max_retries: int = 8
    backoff_s: float = 0.1
    retry_window_s: float = 2.0  # > reconnect_backoff_max_s: a retry sees the next reconnect
    reconnect_backoff_max_s: float = 1.0

    def channel_args(self) -> list[tuple[str, int]]:
        """tritonclient's defaults (message sizes; no keepalive pings, which Triton's default
        enforcement answers with GOAWAY) plus gRPC's reconnect backoff, capped."""
        return [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
            ("grpc.initial_reconnect_backoff_ms", int(self.reconnect_backoff_max_s * 250)),
            ("grpc.max_reconnect_backoff_ms", int(self.reconnect_backoff_max_s * 1000)),
        ]


class TritonClient:
    """The embedder, reranker and generator as typed async calls."""

    def __init__(self, options: TritonOptions) -> None:
        self.options = options
        self._client = triton_aio.InferenceServerClient(url=options.url, channel_args=options.channel_args())
        self._reranker_ready = False
        self._reranker_checked_at = -RERANKER_STATE_TTL_S - 1.0

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> TritonClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _timeout(self, timeout: float | None) -> float:
        return self.options.timeout_s if timeout is None else max(0.001, timeout)

    async def _call(self, model: str, attempt: Callable[[], Awaitable[T]], timeout: float | None) -> T:
        """Run ``attempt``, retrying UNAVAILABLE with backoff inside one overall deadline and for
        at most ``retry_window_s``; each retry waits for the channel to be ready first."""
        now = time.monotonic()
        deadline = now + self._timeout(timeout)
        give_up = min(deadline, now + self.options.retry_window_s)
        delay = self.options.backoff_s
        for tries in range(self.options.max_retries + 1):
            try:
                return await attempt()
            except InferenceServerException as exc:
                error = translate(exc, model=model)
                retryable = isinstance(error, Unavailable) and "UNAVAILABLE" in str(exc.status() or "")
                if not retryable or tries == self.options.max_retries or time.monotonic() + delay >= give_up:
                    raise error from None
                log.warning("Triton unavailable for %s (try %d), retrying in %.2fs", model, tries + 1, delay)
                await asyncio.sleep(delay)
                if not await self._channel_ready(give_up):
                    raise error from None
                delay = min(delay * 2, self.options.reconnect_backoff_max_s)
        raise AssertionError("unreachable")

    async def _channel_ready(self, until: float) -> bool:
        """Wait (until the monotonic time ``until`` at most) for the channel to be connected;
        whether it is."""
        channel = self._client._channel
        if channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return True
        try:
            await asyncio.wait_for(channel.channel_ready(), max(0.0, until - time.monotonic()))
        except TimeoutError:
            return False
        return True

    def _remaining(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the deadline passed before Triton was called")
        return left

    # -- health and model control -------------------------------------------------------------
    async def model_ready(self, model: str, version: str = "", timeout: float | None = 2.0) -> bool:
        try:
            return bool(
                await self._client.is_model_ready(
                    model, model_version=version, client_timeout=self._timeout(timeout)
                )
            )
        except InferenceServerException:
            return False

    async def can_rerank(self) -> bool:
        """Whether the reranker is loaded, asked at most every :data:`RERANKER_STATE_TTL_S`
        (a search must not pay a round trip to learn it)."""
        now = time.monotonic()
        if now - self._reranker_checked_at > RERANKER_STATE_TTL_S:
            self._reranker_checked_at = now
            try:
                self._reranker_ready = await self.model_ready(RERANKER, timeout=1.0)
            except RagError:
                self._reranker_ready = False
        return self._reranker_ready

    async def repository_index(self, timeout: float | None = None) -> list[dict[str, Any]]:
        async def attempt() -> list[dict[str, Any]]:
            index = await self._client.get_model_repository_index(
                as_json=True, client_timeout=self._timeout(timeout)
            )
            return list(index.get("models", []))

        return await self._call("repository", attempt, timeout)

    async def model_metadata(self, model: str, timeout: float | None = None) -> dict[str, Any]:
        """Triton's metadata of ``model``: its served ``versions``, inputs and outputs."""
        return await self._json(model, self._client.get_model_metadata, timeout)

    async def load_model(self, model: str, timeout: float | None = 300.0) -> None:
        deadline = timeout or self.options.timeout_s
        try:
            await asyncio.wait_for(self._client.load_model(model, client_timeout=deadline), deadline)
        except InferenceServerException as exc:
            reason = without_stub_traceback(exc.message() or str(exc))
            raise FailedPrecondition(f"Triton could not load model {model}: {reason}") from None

    async def unload_model(self, model: str, timeout: float | None = 60.0) -> None:
        try:
            await self._client.unload_model(model, client_timeout=timeout)
        except InferenceServerException as exc:
            raise translate(exc, model=model) from None

    async def statistics(self, model: str, timeout: float | None = None) -> dict[str, Any]:
        """Triton's inference statistics of ``model`` (counts, queue and compute times)."""
        return await self._json(model, self._client.get_inference_statistics, timeout)

    async def _json(
        self, model: str, fetch: Callable[..., Awaitable[Any]], timeout: float | None
    ) -> dict[str, Any]:
        """One of Triton's per-model JSON documents, with the client's deadline and retries."""

        async def attempt() -> dict[str, Any]:
            return dict(await fetch(model, as_json=True, client_timeout=self._timeout(timeout)))

        return await self._call(model, attempt, timeout)

    # -- inference ----------------------------------------------------------------------------
    async def embed(
        self, texts: Sequence[str], *, priority: Priority = Priority.INTERACTIVE, timeout: float | None = None
    ) -> FloatArray:
        """L2-normalized embeddings, one row per text; sent as concurrent requests of <= 32 rows."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        deadline = time.monotonic() + self._timeout(timeout)

        async def one(batch: Sequence[str]) -> FloatArray:
            data = np.array([[t.encode("utf-8")] for t in batch], dtype=np.object_)
            tensor = InferInput("TEXT", list(data.shape), "BYTES")
            tensor.set_data_from_numpy(data)

            async def attempt() -> FloatArray:
                left = self._remaining(deadline)
                result = await self._client.infer(
                    EMBEDDER,
                    [tensor],
                    outputs=[InferRequestedOutput("EMBEDDING")],
                    priority=int(priority),
                    timeout=int(left * 1_000_000),
                    client_timeout=left,
                )
                return np.asarray(result.as_numpy("EMBEDDING"), dtype=np.float32)

            return await self._call(EMBEDDER, attempt, self._remaining(deadline))

        parts = [texts[i : i + MAX_BATCH] for i in range(0, len(texts), MAX_BATCH)]
        vectors = await asyncio.gather(*(one(part) for part in parts))
        return np.concatenate(vectors, axis=0)

    async def rerank(
        self,
        query: str,
        passages: Sequence[str],
        *,
        priority: Priority = Priority.INTERACTIVE,
        timeout: float | None = None,
    ) -> FloatArray:
        """Cross-encoder relevance scores, one per passage (higher is more relevant)."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        deadline = time.monotonic() + self._timeout(timeout)

        async def one(batch: Sequence[str]) -> FloatArray:
            queries = np.array([[query.encode("utf-8")] for _ in batch], dtype=np.object_)
            texts = np.array([[p.encode("utf-8")] for p in batch], dtype=np.object_)
            q_in = InferInput("QUERY", list(queries.shape), "BYTES")
            q_in.set_data_from_numpy(queries)
            p_in = InferInput("PASSAGE", list(texts.shape), "BYTES")
            p_in.set_data_from_numpy(texts)

            async def attempt() -> FloatArray:
                left = self._remaining(deadline)
                result = await self._client.infer(
                    RERANKER,
                    [q_in, p_in],
                    priority=int(priority),
                    timeout=int(left * 1_000_000),
                    client_timeout=left,
                )
                return np.asarray(result.as_numpy("SCORE"), dtype=np.float32).reshape(-1)

            return await self._call(RERANKER, attempt, self._remaining(deadline))

        parts = [passages[i : i + MAX_BATCH] for i in range(0, len(passages), MAX_BATCH)]
        return np.concatenate(await asyncio.gather(*(one(part) for part in parts)))

    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        timeout: float | None = None,
        priority: Priority = Priority.GENERATION,
    ) -> AsyncGenerator[str, None]:
        """Stream the generator's tokens as Triton produces them.

        Closing the iterator early (or cancelling the task) cancels the Triton stream, which the
        model sees through ``request.is_cancelled()``.
        """
        deadline = time.monotonic() + self._timeout(timeout)
        inputs = [
            _tensor("PROMPT", np.array([prompt.encode("utf-8")], dtype=np.object_), "BYTES"),
            _tensor("MAX_TOKENS", np.array([max_tokens], dtype=np.int32), "INT32"),
            _tensor("TEMPERATURE", np.array([temperature], dtype=np.float32), "FP32"),
        ]
        if stop:
            inputs.append(
                _tensor("STOP", np.array([s.encode("utf-8") for s in stop], dtype=np.object_), "BYTES")
            )
        finished = asyncio.Event()
        request = _get_inference_request(
            model_name=GENERATOR,
            inputs=inputs,
            model_version="",
            request_id="",
            outputs=None,
            sequence_id=0,
            sequence_start=False,
            sequence_end=False,
            priority=int(priority),
            timeout=None,
            parameters=None,
        )
        # The aio client refuses this reserved parameter, yet without it a decoupled model's
        # final flag never reaches the client. Set it on the request and call the stub directly.
        request.parameters["triton_enable_empty_final_response"].bool_param = True

        async def requests() -> AsyncIterator[Any]:
            yield request
            await finished.wait()  # keep the stream open until the final response arrives

        # A stream is not retried once open: give a reconnecting channel its retry window first.
        await self._channel_ready(min(deadline, time.monotonic() + self.options.retry_window_s))
        stream = self._client._client_stub.ModelStreamInfer(requests(), timeout=self._remaining(deadline))
        completed = False
        try:
            async for message in stream:
                if message.error_message:
                    raise translate(InferenceServerException(msg=message.error_message), model=GENERATOR)
                result = InferResult(message.infer_response)
                response = message.infer_response
                final = response.parameters.get("triton_final_response")
                if response.outputs:
                    token = result.as_numpy("TOKEN")
                    if token is not None and token.size:
                        value = token.reshape(-1)[0]
                        yield value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                if final is not None and final.bool_param:
                    completed = True
                    break
        except InferenceServerException as exc:
            raise translate(exc, model=GENERATOR) from None
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceeded("the generator did not finish within the deadline") from None
            if exc.code() == grpc.StatusCode.CANCELLED:
                raise asyncio.CancelledError from None
            raise Unavailable(
                f"Triton stream failed: {exc.details()}; is the inference server running?"
            ) from None
        finally:
            finished.set()
            if completed:
                await _end_quietly(stream)
            else:  # closed early: cancelling the RPC tells the model (request.is_cancelled())
                stream.cancel()


async def _end_quietly(stream: Any, timeout_s: float = 5.0) -> None:
    """Let a finished stream end on its own: the request iterator has ended (a half-close) and
    Triton closes the RPC. Cancelling it instead races Triton's release of the request: with
    Triton 2.51 that left the generator's version stuck UNLOADING at its next reload (and the
    server's strict readiness down)."""
    try:
        async with asyncio.timeout(timeout_s):
            async for _ in stream:
                pass
    except (TimeoutError, grpc.aio.AioRpcError):
        stream.cancel()


def _tensor(name: str, data: NDArray[Any], dtype: str) -> InferInput:
    tensor = InferInput(name, list(data.shape), dtype)
    tensor.set_data_from_numpy(data)
    return tensor
