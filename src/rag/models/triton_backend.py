"""What the Triton adapters in ``triton_models/<model>/1/model.py`` share.

Triton hands a Python-backend model its utilities (``triton_python_backend_utils``) only inside
the backend's stub process, so nothing here imports them: each function takes that module as
``pb_utils``. The adapters pass the real one; the tests pass a stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from rag.core.errors import InvalidInput
from rag.models.tensors import RowBatch
from rag.models.triton_args import (
    WeightsSource,
    instance_device,
    model_config,
    model_parameters,
    weights_source,
)

Row = TypeVar("Row")


@dataclass(frozen=True)
class ModelArguments:
    """What ``initialize`` reads from Triton's arguments, once.

    ``output`` is the config of the model's output tensor and ``output_dtype`` its numpy
    type; ``source`` says which weights to load (a promoted version its own, version 1 the
    config's MODEL_PATH) and ``device`` where to run them.
    """

    config: dict[str, Any]
    parameters: dict[str, str]
    output: dict[str, Any]
    output_dtype: Any
    source: WeightsSource
    device: str


def read_arguments(pb_utils: Any, args: Mapping[str, str], output_name: str) -> ModelArguments:
    """Parse Triton's ``args`` for a model whose output tensor is ``output_name``."""
    config = model_config(args)
    parameters = model_parameters(config)
    output = pb_utils.get_output_config_by_name(config, output_name)
    return ModelArguments(
        config=config,
        parameters=parameters,
        output=output,
        output_dtype=pb_utils.triton_string_to_numpy(output["data_type"]),
        source=weights_source(args, parameters),
        device=instance_device(args),
    )


def input_array(pb_utils: Any, request: Any, name: str) -> Any:
    """The request's input tensor ``name`` as a numpy array, or None if it was not sent."""
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return tensor.as_numpy() if tensor is not None else None


def error_response(pb_utils: Any, message: str, code: Any) -> Any:
    """A response that fails one request (the rest of the batch goes on)."""
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))


def answer_in_one_call(
    pb_utils: Any,
    requests: Sequence[Any],
    *,
    parse: Callable[[Any], Sequence[Row]],
    run: Callable[[list[Row]], NDArray[np.generic]],
    output_name: str,
) -> list[Any]:
    """One response per request, in order, with the rows of the whole batch run in one call.

    ``parse`` turns a request into its rows (raising :class:`InvalidInput` for a bad one);
    ``run`` computes one output row per input row. A cancelled or bad request gets its error
    response and the others go on; nothing is run when no request is left.
    """
    responses: list[Any] = [None] * len(requests)
    batch: RowBatch[Row] = RowBatch()
    for index, request in enumerate(requests):
        if request.is_cancelled():
            responses[index] = error_response(pb_utils, "request cancelled", pb_utils.TritonError.CANCELLED)
            continue
        try:
            rows = parse(request)
        except InvalidInput as exc:
            responses[index] = error_response(pb_utils, str(exc), pb_utils.TritonError.INVALID_ARG)
            continue
        batch.add(index, rows)
    if batch.rows:
        for index, outputs in batch.split(run(batch.rows)).items():
            responses[index] = pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor(output_name, outputs)]
            )
    return responses
