"""rag.models.triton_backend: the shared plumbing of the Triton adapters, with a minimal pb_utils."""

from __future__ import annotations

import json
import types
from typing import Any

import numpy as np
import pytest

from rag.core.errors import InvalidInput
from rag.models.triton_backend import answer_in_one_call, error_response, input_array, read_arguments

CANCELLED, INVALID_ARG = 7, 3


class Request:
    def __init__(self, words: list[str] | None, cancelled: bool = False) -> None:
        self.inputs = {} if words is None else {"WORDS": np.array(words, dtype=object)}
        self.cancelled = cancelled

    def is_cancelled(self) -> bool:
        return self.cancelled


class Tensor:
    def __init__(self, name: str, array: Any) -> None:
        self.name, self.array = name, array


class Response:
    def __init__(self, output_tensors: list[Tensor] | None = None, error: tuple[str, int] | None = None):
        self.outputs, self.error = output_tensors, error


def _input_tensor(request: Request, name: str) -> Any:
    array = request.inputs.get(name)
    return None if array is None else types.SimpleNamespace(as_numpy=lambda: array)


class TritonError:
    """TritonError(message, code) as a tuple, which is enough to compare."""

    CANCELLED, INVALID_ARG = CANCELLED, INVALID_ARG

    def __new__(cls, message: str, code: int) -> Any:
        return (message, code)


PB_UTILS = types.SimpleNamespace(
    TritonError=TritonError,
    InferenceResponse=Response,
    Tensor=Tensor,
    get_input_tensor_by_name=_input_tensor,
    get_output_config_by_name=lambda config, name: next(o for o in config["output"] if o["name"] == name),
    triton_string_to_numpy=lambda name: {"TYPE_FP32": np.float32}[name],
)


def _parse(request: Any) -> list[str]:
    words = input_array(PB_UTILS, request, "WORDS")
    if words is None:
        raise InvalidInput("WORDS: missing")
    return [str(word) for word in words]


def test_each_request_gets_its_rows_in_order_from_one_call() -> None:
    calls: list[list[str]] = []

    def lengths(rows: list[str]) -> np.ndarray[Any, Any]:
        calls.append(rows)
        return np.array([[len(row)] for row in rows], dtype=np.float32)

    requests = [Request(["a", "bb"]), Request(None), Request(["ccc"], cancelled=True), Request(["dddd"])]

    responses = answer_in_one_call(PB_UTILS, requests, parse=_parse, run=lengths, output_name="LENGTH")

    assert calls == [["a", "bb", "dddd"]]
    assert len(responses) == 4
    assert [t.name for t in responses[0].outputs] == ["LENGTH"]
    assert responses[0].outputs[0].array.tolist() == [[1.0], [2.0]]
    assert responses[1].error == ("WORDS: missing", INVALID_ARG)
    assert responses[2].error == ("request cancelled", CANCELLED)
    assert responses[3].outputs[0].array.tolist() == [[4.0]]


def test_nothing_runs_when_no_request_is_left() -> None:
    def run(rows: list[str]) -> np.ndarray[Any, Any]:
        raise AssertionError("the model ran for no rows")

    responses = answer_in_one_call(PB_UTILS, [Request(None)], parse=_parse, run=run, output_name="LENGTH")

    assert [r.error for r in responses] == [("WORDS: missing", INVALID_ARG)]


def test_a_model_that_returns_too_few_rows_is_broken() -> None:
    with pytest.raises(ValueError, match="1 rows for 2 inputs"):
        answer_in_one_call(
            PB_UTILS,
            [Request(["a", "b"])],
            parse=_parse,
            run=lambda rows: np.zeros((1, 1)),
            output_name="LENGTH",
        )


def test_error_response_carries_message_and_code() -> None:
    assert error_response(PB_UTILS, "bad", INVALID_ARG).error == ("bad", INVALID_ARG)


def test_arguments_are_read_once_with_output_type_weights_and_device() -> None:
    config = {
        "output": [{"name": "LENGTH", "data_type": "TYPE_FP32", "dims": [1]}],
        "parameters": {"MODEL_PATH": {"string_value": "/models/x"}},
    }
    args = {
        "model_config": json.dumps(config),
        "model_instance_kind": "CPU",
        "model_instance_device_id": "0",
        "model_version": "1",
    }

    model = read_arguments(PB_UTILS, args, "LENGTH")

    assert model.output["name"] == "LENGTH"
    assert model.output_dtype is np.float32
    assert model.parameters["MODEL_PATH"] == "/models/x"
    assert model.source.path == "/models/x"
    assert model.device == "cpu"
