"""The triton_models/*/1/model.py adapters, run against a stand-in for Triton's pb_utils.

Triton's ``triton_python_backend_utils`` exists only inside the Python backend's stub
process; this stand-in mirrors the parts the adapters use, so the adapters' contract (one
response per request in order, errors per request, final flag on every stream) is checked
here. The integration tests run the same files in the real tritonserver.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from rag.modelops.triton_config import RenderOptions, render_repository
from rag.models.embedding import Embedder
from rag.models.generation import Generator

REPOSITORY = Path(__file__).resolve().parents[3] / "triton_models"
FINAL = 1


class TritonError:
    UNKNOWN, INTERNAL, NOT_FOUND, INVALID_ARG, UNAVAILABLE, UNSUPPORTED, ALREADY_EXISTS = range(7)
    CANCELLED = 7

    def __init__(self, message: str, code: int = 0) -> None:
        self._message, self._code = message, code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code


class Tensor:
    def __init__(self, name: str, array: np.ndarray[Any, Any]) -> None:
        self._name, self._array = name, array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray[Any, Any]:
        return self._array


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor] | None = None, error: TritonError | None = None):
        self._outputs, self._error = output_tensors or [], error

    def output_tensors(self) -> list[Tensor]:
        return self._outputs

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error


class ResponseSender:
    def __init__(self) -> None:
        self.sent: list[tuple[InferenceResponse | None, int]] = []

    def send(self, response: InferenceResponse | None = None, flags: int = 0) -> None:
        if self.sent and self.sent[-1][1] == FINAL:
            raise RuntimeError("send after the final flag")
        self.sent.append((response, flags))


class InferenceRequest:
    def __init__(self, cancelled: Callable[[], bool] = lambda: False, **inputs: np.ndarray[Any, Any]) -> None:
        self._inputs = [Tensor(name, array) for name, array in inputs.items()]
        self._cancelled = cancelled
        self.sender = ResponseSender()

    def inputs(self) -> list[Tensor]:
        return self._inputs

    def is_cancelled(self) -> bool:
        return self._cancelled()

    def get_response_sender(self) -> ResponseSender:
        return self.sender


class TritonModelException(Exception):
    pass


class Logger:
    lines: list[tuple[str, str]] = []  # noqa: RUF012

    @classmethod
    def log_info(cls, message: str) -> None:
        cls.lines.append(("info", message))

    @classmethod
    def log_warn(cls, message: str) -> None:
        cls.lines.append(("warn", message))

    @classmethod
    def log_error(cls, message: str) -> None:
        cls.lines.append(("error", message))


def _pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    numpy_types = {"TYPE_FP32": np.float32, "TYPE_INT32": np.int32, "TYPE_STRING": np.object_}

    def get_input_tensor_by_name(request: InferenceRequest, name: str) -> Tensor | None:
        return next((t for t in request.inputs() if t.name() == name), None)

    def get_output_config_by_name(config: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((o for o in config.get("output", []) if o["name"] == name), None)

    def using_decoupled_model_transaction_policy(config: dict[str, Any]) -> bool:
        return bool(config.get("model_transaction_policy", {}).get("decoupled", False))

    module.__dict__.update(
        TritonError=TritonError,
        Tensor=Tensor,
        InferenceResponse=InferenceResponse,
        TritonModelException=TritonModelException,
        Logger=Logger,
        TRITONSERVER_RESPONSE_COMPLETE_FINAL=FINAL,
        get_input_tensor_by_name=get_input_tensor_by_name,
        get_output_config_by_name=get_output_config_by_name,
        using_decoupled_model_transaction_policy=using_decoupled_model_transaction_policy,
        triton_string_to_numpy=numpy_types.__getitem__,
    )
    return module


@pytest.fixture
def load_adapter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Render the repository with ``options``, import ``<model>/1/model.py`` and initialize it
    with the arguments Triton would pass (the config as JSON, as Triton serializes it)."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _pb_utils())

    def load(model: str, options: RenderOptions, decoupled: bool | None = None) -> Any:
        out = tmp_path / f"repo-{len(list(tmp_path.iterdir()))}"
        render_repository(REPOSITORY, options, out)
        config = text_format.Parse((out / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        if decoupled is not None:
            config.model_transaction_policy.decoupled = decoupled
        spec = importlib.util.spec_from_file_location(f"adapter_{model}", out / model / "1" / "model.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        adapter = module.TritonPythonModel()
        adapter.initialize(
            {
                "model_config": json_format.MessageToJson(config, preserving_proto_field_name=True),
                "model_instance_kind": "CPU",
                "model_instance_device_id": "0",
                "model_name": model,
                "model_version": "1",
            }
        )
        return adapter

    yield load


def strings(*values: str | bytes) -> np.ndarray[Any, Any]:
    return np.array([[v if isinstance(v, bytes) else v.encode()] for v in values], dtype=object)


def error_of(response: InferenceResponse | None) -> tuple[int, str]:
    assert response is not None and response.error() is not None
    error = response.error()
    assert error is not None
    return error.code(), error.message()


def test_embedder_answers_each_request_in_order(load_adapter: Callable[..., Any], embedder: Embedder) -> None:
    adapter = load_adapter("embedder", RenderOptions())
    requests = [
        InferenceRequest(TEXT=strings("first text", "second text")),
        InferenceRequest(TEXT=strings(b"\xff broken")),
        InferenceRequest(cancelled=lambda: True, TEXT=strings("gone")),
        InferenceRequest(TEXT=strings("third text")),
        InferenceRequest(),
    ]

    responses = adapter.execute(requests)

    assert len(responses) == len(requests)
    first, third = (r.output_tensors()[0].as_numpy() for r in (responses[0], responses[3]))
    assert first.shape == (2, 384) and first.dtype == np.float32
    np.testing.assert_allclose(first, embedder.encode(["first text", "second text"]), atol=1e-5)
    np.testing.assert_allclose(third, embedder.encode(["third text"]), atol=1e-5)
    assert error_of(responses[1]) == (
        TritonError.INVALID_ARG,
        "TEXT: is not valid UTF-8 (invalid start byte)",
    )
    assert error_of(responses[2]) == (TritonError.CANCELLED, "request cancelled")
    assert error_of(responses[4]) == (TritonError.INVALID_ARG, "TEXT: is required")


def test_embedder_refuses_a_config_of_another_dimension(load_adapter: Callable[..., Any]) -> None:
    with pytest.raises(TritonModelException, match="--embedding-dim 384"):
        load_adapter("embedder", RenderOptions(embedding_dim=768))


def test_reranker_scores_rows_and_reports_bad_requests(
    load_adapter: Callable[..., Any], tiny_cross_encoder_path: Path
) -> None:
    adapter = load_adapter("reranker", RenderOptions(reranker_model_path=str(tiny_cross_encoder_path)))
    good = InferenceRequest(QUERY=strings("q", "q", "q"), PASSAGE=strings("a", "b", "c"))
    bad = InferenceRequest(QUERY=strings("q"), PASSAGE=strings("a", "b"))

    responses = adapter.execute([good, bad])

    scores = responses[0].output_tensors()[0].as_numpy()
    assert scores.shape == (3, 1) and scores.dtype == np.float32
    assert error_of(responses[1])[0] == TritonError.INVALID_ARG


def test_reranker_without_weights_says_how_to_register_one(load_adapter: Callable[..., Any]) -> None:
    with pytest.raises(TritonModelException, match="--reranker-model-path"):
        load_adapter("reranker", RenderOptions())


def generation_request(
    prompt: str = "Hello", max_tokens: int = 12, cancelled: Callable[[], bool] = lambda: False
) -> InferenceRequest:
    return InferenceRequest(
        cancelled=cancelled,
        PROMPT=np.array([prompt.encode()], dtype=object),
        MAX_TOKENS=np.array([max_tokens], dtype=np.int32),
        TEMPERATURE=np.array([0.0], dtype=np.float32),
    )


def tokens(sender: ResponseSender) -> list[str]:
    return [r.output_tensors()[0].as_numpy()[0].decode() for r, _ in sender.sent if r and not r.has_error()]


@pytest.fixture
def generator_adapter(load_adapter: Callable[..., Any], tiny_gpt2_path: Path) -> Any:
    options = RenderOptions(generator_model_path=str(tiny_gpt2_path), generator_dtype="float32")
    return load_adapter("generator", options)


def test_generator_streams_tokens_then_the_final_flag(generator_adapter: Any, tiny_gpt2_path: Path) -> None:
    first, second = generation_request("Hello", 12), generation_request("Other", 5)

    assert generator_adapter.execute([first, second]) is None

    expected = Generator(tiny_gpt2_path, dtype="float32").generate("Hello", 12)
    assert "".join(tokens(first.sender)) == expected
    for request in (first, second):
        assert request.sender.sent[-1] == (None, FINAL)
        assert all(flags == 0 for _, flags in request.sender.sent[:-1])
    assert len(tokens(second.sender)) == 5


def test_generator_bad_request_ends_with_an_error_and_the_final_flag(generator_adapter: Any) -> None:
    request = generation_request(max_tokens=0)

    generator_adapter.execute([request])

    [(response, flags)] = request.sender.sent
    assert flags == FINAL
    assert error_of(response) == (TritonError.INVALID_ARG, "MAX_TOKENS: must be at least 1, got 0")


def test_generator_cancellation_ends_the_stream_within_a_token(generator_adapter: Any) -> None:
    holder: list[InferenceRequest] = []
    request = generation_request(max_tokens=50, cancelled=lambda: len(holder[0].sender.sent) >= 2)
    holder.append(request)

    generator_adapter.execute([request])

    assert len(tokens(request.sender)) == 2
    response, flags = request.sender.sent[-1]
    assert flags == FINAL
    assert error_of(response)[0] == TritonError.CANCELLED


def test_generator_failure_mid_stream_still_sends_the_final_flag(
    generator_adapter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_stream(*args: Any, **kwargs: Any) -> Iterator[str]:
        yield "partial"
        raise RuntimeError("out of memory")

    monkeypatch.setattr(generator_adapter.generator, "stream", failing_stream)
    request = generation_request()

    generator_adapter.execute([request])

    assert tokens(request.sender) == ["partial"]
    response, flags = request.sender.sent[-1]
    assert flags == FINAL
    assert error_of(response) == (TritonError.INTERNAL, "generation failed: out of memory")
    assert ("error", "generation failed: RuntimeError: out of memory") in Logger.lines


def test_generator_refuses_a_config_that_is_not_decoupled(
    load_adapter: Callable[..., Any], tiny_gpt2_path: Path
) -> None:
    options = RenderOptions(generator_model_path=str(tiny_gpt2_path))
    with pytest.raises(TritonModelException, match="decoupled"):
        load_adapter("generator", options, decoupled=False)
