"""The Triton model repository on disk, seen as numbered versions of each model.

Version 1 of every model comes from ``triton_models/`` (its ``model.py`` loads the config's
``MODEL_PATH``). A promotion exports a registered version as the next number: a copy of
version 1's files plus ``weights/`` and ``model.json`` (where the weights came from). The
folder is assembled under a hidden name and renamed into place, so Triton never sees half a
version. With Triton's default version policy (``latest 1``) a reload serves the highest
version and unloads the others.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rag.core.errors import ConfigurationError
from rag.modelops.triton_config import CONFIG_NAME, TEMPLATE_NAME
from rag.models.triton_args import VERSION_METADATA, VERSION_WEIGHTS

BASE_VERSION = 1


class TritonRepository:
    """Version folders of the models in the repository Triton serves (``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def model_dir(self, model: str) -> Path:
        folder = self.root / model
        if (folder / TEMPLATE_NAME).exists():
            raise ConfigurationError(
                f"TRITON_MODEL_REPOSITORY ({self.root}) holds the templates, not the repository "
                "Triton serves: point it at the rendered one (the local stack's is "
                ".rag/model_repository)"
            )
        if not (folder / CONFIG_NAME).is_file() or not (folder / str(BASE_VERSION)).is_dir():
            raise ConfigurationError(
                f"{folder} is not a rendered Triton model (expected {CONFIG_NAME} and "
                f"{BASE_VERSION}/model.py); is TRITON_MODEL_REPOSITORY right?"
            )
        return folder

    def versions(self, model: str) -> list[int]:
        """The numbered version folders of ``model``, ascending."""
        folder = self.model_dir(model)
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())

    def next_version(self, model: str) -> int:
        return max(self.versions(model), default=BASE_VERSION) + 1

    def export(self, model: str, weights: Path, metadata: Mapping[str, Any]) -> int:
        """Make ``weights`` (moved, not copied) the next version of ``model``; return its number."""
        folder = self.model_dir(model)
        version = self.next_version(model)
        staging = folder / f".export-{version}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(
                folder / str(BASE_VERSION),
                staging,
                ignore=shutil.ignore_patterns("__pycache__", VERSION_WEIGHTS, VERSION_METADATA),
            )
            shutil.move(str(weights), str(staging / VERSION_WEIGHTS))
            (staging / VERSION_METADATA).write_text(json.dumps(dict(metadata), indent=2, sort_keys=True))
            staging.rename(folder / str(version))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version

    def copy_version(self, model: str, source: int, target: int) -> None:
        """Make version ``target`` a copy of version ``source`` (hard links: no bytes copied)."""
        folder = self.model_dir(model)
        staging = folder / f".copy-{target}-{uuid.uuid4().hex[:8]}"

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        try:
            skip = shutil.ignore_patterns("__pycache__")
            shutil.copytree(folder / str(source), staging, copy_function=link, ignore=skip)
            staging.rename(folder / str(target))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def weights(self, model: str, version: int) -> Path:
        return self.model_dir(model) / str(version) / VERSION_WEIGHTS

    def metadata(self, model: str, version: int) -> dict[str, Any]:
        note = self.model_dir(model) / str(version) / VERSION_METADATA
        return dict(json.loads(note.read_text())) if note.is_file() else {}

    def remove(self, model: str, version: int) -> None:
        """Delete version ``version`` (never the base version)."""
        if version == BASE_VERSION:
            raise ValueError("version 1 comes from the templates and is never removed")
        shutil.rmtree(self.model_dir(model) / str(version), ignore_errors=True)

    def prune(self, model: str, keep: Iterable[int]) -> list[int]:
        """Delete every exported version not in ``keep``; return the removed numbers."""
        kept = {BASE_VERSION, *keep}
        removed = [v for v in self.versions(model) if v not in kept]
        for version in removed:
            self.remove(model, version)
        return removed

    def output_dims(self, model: str, output: str) -> list[int]:
        """The configured ``dims`` of output ``output`` (from the rendered config.pbtxt)."""
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2

        path = self.model_dir(model) / CONFIG_NAME
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        for entry in config.output:
            if entry.name == output:
                return [int(d) for d in entry.dims]
        raise ConfigurationError(f"{path} has no output {output!r}")
