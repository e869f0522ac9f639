"""Turning Triton request tensors (numpy arrays) into checked Python values and back.

The Triton adapters in ``triton_models/`` hand their input arrays to these functions, so the
rules for what a valid request is live here, where they are tested without Triton. Each
function raises :class:`~rag.core.errors.InvalidInput` naming the tensor at fault; the
adapter turns that into an error response for that request alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from rag.core.errors import InvalidInput

T = TypeVar("T")


def decode_strings(array: NDArray[np.object_] | None, name: str) -> list[str]:
    """All elements of a BYTES tensor, flattened in row order, as UTF-8 strings."""
    if array is None:
        raise InvalidInput("is required", field=name)
    texts: list[str] = []
    for value in np.asarray(array, dtype=object).reshape(-1):
        if isinstance(value, bytes | np.bytes_):
            try:
                texts.append(bytes(value).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"is not valid UTF-8 ({exc.reason})", field=name) from None
        elif isinstance(value, str):
            texts.append(value)
        else:
            raise InvalidInput(f"must hold strings, got {type(value).__name__}", field=name)
    return texts


def encode_strings(texts: Sequence[str]) -> NDArray[np.object_]:
    """A 1-D BYTES tensor (numpy object array of UTF-8 bytes) holding ``texts``."""
    return np.array([text.encode("utf-8") for text in texts], dtype=object)


def scalar(array: NDArray[np.generic] | None, name: str) -> float:
    """The one number a scalar input tensor holds."""
    if array is None:
        raise InvalidInput("is required", field=name)
    flat = np.asarray(array).reshape(-1)
    if flat.size != 1:
        raise InvalidInput(f"must hold exactly one value, got {flat.size}", field=name)
    return float(flat[0])


@dataclass(frozen=True)
class GenerationInputs:
    """One generator request, checked."""

    prompt: str
    max_tokens: int
    temperature: float
    stop: tuple[str, ...]


def parse_generation_inputs(
    prompt: NDArray[np.object_] | None,
    max_tokens: NDArray[np.generic] | None,
    temperature: NDArray[np.generic] | None,
    stop: NDArray[np.object_] | None,
) -> GenerationInputs:
    """Check the generator's PROMPT, MAX_TOKENS, TEMPERATURE and optional STOP tensors.

    Range checks that depend on the model (context length, temperature bounds) are the
    generator's; this checks shape and type.
    """
    prompts = decode_strings(prompt, "PROMPT")
    if len(prompts) != 1:
        raise InvalidInput(f"must hold exactly one prompt, got {len(prompts)}", field="PROMPT")
    tokens = scalar(max_tokens, "MAX_TOKENS")
    if not tokens.is_integer():
        raise InvalidInput(f"must be a whole number, got {tokens}", field="MAX_TOKENS")
    heat = scalar(temperature, "TEMPERATURE")
    if not math.isfinite(heat):
        raise InvalidInput("must be a finite number", field="TEMPERATURE")
    stops = tuple(s for s in decode_strings(stop, "STOP") if s) if stop is not None else ()
    return GenerationInputs(prompts[0], int(tokens), heat, stops)


def parse_rerank_pairs(
    query: NDArray[np.object_] | None, passage: NDArray[np.object_] | None
) -> list[tuple[str, str]]:
    """Pair the rows of the reranker's QUERY and PASSAGE tensors."""
    queries = decode_strings(query, "QUERY")
    passages = decode_strings(passage, "PASSAGE")
    if len(queries) != len(passages):
        raise InvalidInput(
            f"has {len(passages)} rows but QUERY has {len(queries)}; send one query per passage",
            field="PASSAGE",
        )
    return list(zip(queries, passages, strict=True))


class RowBatch(Generic[T]):
    """Rows of several requests gathered for one model call, then split back per request.

    ``add`` records which rows belong to which request; after the model has computed one
    output row per input row, ``split`` returns each request's slice of the output.
    """

    def __init__(self) -> None:
        self.rows: list[T] = []
        self._spans: dict[int, tuple[int, int]] = {}

    def add(self, request_index: int, rows: Sequence[T]) -> None:
        start = len(self.rows)
        self.rows.extend(rows)
        self._spans[request_index] = (start, len(self.rows))

    def split(self, outputs: NDArray[np.generic]) -> dict[int, NDArray[np.generic]]:
        """Each request's output rows, keyed by its index."""
        if len(outputs) != len(self.rows):
            raise ValueError(f"model returned {len(outputs)} rows for {len(self.rows)} inputs")
        return {index: outputs[start:end] for index, (start, end) in self._spans.items()}
