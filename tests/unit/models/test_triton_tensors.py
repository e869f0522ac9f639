from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from rag.core.errors import InvalidInput
from rag.models.tensors import (
    GenerationInputs,
    RowBatch,
    decode_strings,
    encode_strings,
    parse_generation_inputs,
    parse_rerank_pairs,
)
from rag.models.triton_args import instance_device, model_config, model_parameters


def strings(*values: str) -> np.ndarray[Any, Any]:
    return np.array([[v.encode()] for v in values], dtype=object)


def test_strings_are_flattened_and_decoded() -> None:
    assert decode_strings(strings("a", "é", ""), "TEXT") == ["a", "é", ""]
    assert decode_strings(np.array(["plain"], dtype=object), "TEXT") == ["plain"]


def test_invalid_utf8_names_the_tensor() -> None:
    with pytest.raises(InvalidInput, match=r"^TEXT: is not valid UTF-8"):
        decode_strings(np.array([[b"\xff\xfe"]], dtype=object), "TEXT")


def test_missing_and_non_string_tensors_are_refused() -> None:
    with pytest.raises(InvalidInput, match="TEXT: is required"):
        decode_strings(None, "TEXT")
    with pytest.raises(InvalidInput, match="must hold strings"):
        decode_strings(np.array([1.5], dtype=object), "TEXT")


def test_encode_strings_round_trips() -> None:
    encoded = encode_strings(["a", "€"])
    assert encoded.dtype == object
    assert decode_strings(encoded, "TOKEN") == ["a", "€"]


def test_generation_inputs_are_parsed() -> None:
    inputs = parse_generation_inputs(
        np.array([b"Why?"], dtype=object),
        np.array([16], dtype=np.int32),
        np.array([0.5], dtype=np.float32),
        np.array([b"\n\n", b"", b"END"], dtype=object),
    )
    assert inputs == GenerationInputs("Why?", 16, 0.5, ("\n\n", "END"))


def test_stop_is_optional() -> None:
    inputs = parse_generation_inputs(np.array([b"Why?"], dtype=object), np.array([1]), np.array([0.0]), None)
    assert inputs.stop == ()


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "temperature", "message"),
    [
        (None, [1], [0.0], "PROMPT: is required"),
        ([b"a", b"b"], [1], [0.0], "PROMPT: must hold exactly one prompt"),
        ([b"a"], [1, 2], [0.0], "MAX_TOKENS: must hold exactly one value"),
        ([b"a"], [1.5], [0.0], "MAX_TOKENS: must be a whole number"),
        ([b"a"], [1], [float("inf")], "TEMPERATURE: must be a finite number"),
        ([b"a"], None, [0.0], "MAX_TOKENS: is required"),
    ],
)
def test_bad_generation_inputs_name_the_tensor(
    prompt: list[bytes] | None,
    max_tokens: list[float] | None,
    temperature: list[float],
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_generation_inputs(
            None if prompt is None else np.array(prompt, dtype=object),
            None if max_tokens is None else np.array(max_tokens),
            np.array(temperature),
            None,
        )


def test_rerank_pairs_need_one_query_per_passage() -> None:
    assert parse_rerank_pairs(strings("q", "q"), strings("p1", "p2")) == [("q", "p1"), ("q", "p2")]
    with pytest.raises(InvalidInput, match="PASSAGE: has 2 rows but QUERY has 1"):
        parse_rerank_pairs(strings("q"), strings("p1", "p2"))


def test_row_batch_splits_outputs_back_per_request() -> None:
    batch: RowBatch[str] = RowBatch()
    batch.add(0, ["a", "b"])
    batch.add(2, ["c"])
    outputs = np.arange(6).reshape(3, 2)

    split = batch.split(outputs)

    assert batch.rows == ["a", "b", "c"]
    np.testing.assert_array_equal(split[0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(split[2], [[4, 5]])
    with pytest.raises(ValueError, match="2 rows for 3 inputs"):
        batch.split(outputs[:2])


def test_initialize_arguments_are_read() -> None:
    args = {
        "model_config": json.dumps({"parameters": {"MODEL_PATH": {"string_value": "/m"}, "EMPTY": {}}}),
        "model_instance_kind": "GPU",
        "model_instance_device_id": "1",
    }
    config = model_config(args)

    assert model_parameters(config) == {"MODEL_PATH": "/m", "EMPTY": ""}
    assert model_parameters({}) == {}
    assert instance_device(args) == "cuda:1"
    assert instance_device({"model_instance_kind": "CPU"}) == "cpu"
