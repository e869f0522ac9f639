"""Reading what Triton hands a Python-backend model's ``initialize(args)``.

Plain dictionaries in, plain values out, so the adapters stay thin and this is tested
without Triton.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A promoted version folder holds its own weights and a note of where they came from
# (written by rag.modelops.triton_repository when a registered version is exported).
VERSION_WEIGHTS = "weights"
VERSION_METADATA = "model.json"


def model_config(args: Mapping[str, str]) -> dict[str, Any]:
    """The model's configuration (``config.pbtxt`` as JSON) from ``initialize``'s args."""
    config: dict[str, Any] = json.loads(args["model_config"])
    return config


def model_parameters(config: Mapping[str, Any]) -> dict[str, str]:
    """The config's ``parameters`` entries as ``{KEY: string_value}``."""
    entries: Mapping[str, Any] = config.get("parameters") or {}
    return {key: str(value.get("string_value", "")) for key, value in entries.items()}


def instance_device(args: Mapping[str, str]) -> str:
    """The torch device of this model instance: ``cuda:N`` for a KIND_GPU instance, else cpu."""
    if args.get("model_instance_kind", "CPU").upper() == "GPU":
        return f"cuda:{int(args.get('model_instance_device_id') or 0)}"
    return "cpu"


@dataclass(frozen=True)
class WeightsSource:
    """Where this model version's weights are and what to call them.

    ``path`` None means the runtime's packaged default weights; ``model_version`` None means
    the runtime names the weights itself (a content digest).
    """

    path: str | None
    model_version: str | None


def weights_source(args: Mapping[str, str], parameters: Mapping[str, str]) -> WeightsSource:
    """The weights a version loads: ``<model_repository>/<version>/weights`` when the version
    was exported from the registry, else the ``MODEL_PATH`` parameter (empty: the default).

    Triton passes the model's folder as ``model_repository`` and the version being loaded as
    ``model_version``; a version folder without weights (version 1, from the templates) falls
    back to the config's parameters.
    """
    folder = args.get("model_repository")
    version = args.get("model_version")
    if folder and version:
        version_dir = Path(folder) / version
        weights = version_dir / VERSION_WEIGHTS
        if weights.exists():
            metadata: dict[str, Any] = {}
            note = version_dir / VERSION_METADATA
            if note.is_file():
                metadata = json.loads(note.read_text())
            return WeightsSource(str(weights), str(metadata.get("model_version") or "") or None)
    return WeightsSource(parameters.get("MODEL_PATH") or None, parameters.get("MODEL_VERSION") or None)
