"""Reading what Triton hands a Python-backend model's ``initialize(args)``.

Plain dictionaries in, plain values out, so the adapters stay thin and this is tested
without Triton.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


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
