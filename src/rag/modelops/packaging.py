"""The three model kinds as MLflow models: how each is packaged for the registry, where its
weights lie in a downloaded version, and the checks a version passes before Triton loads it.

- embedder: MLflow's ``sentence_transformers`` flavor (``mlflow.sentence_transformers``
  loads it back); the weights are the flavor's ``model.sentence_transformer`` folder.
- reranker and generator: ``pyfunc`` with the weights as the artifact ``weights``, copied
  verbatim (see :mod:`rag.modelops.pyfunc` for why).

Every version carries the tags ``kind``, ``sha256`` (:func:`rag.models.artifacts.weights_digest`
of the weights as uploaded), ``model_version`` (the name vectors and caches are keyed by),
``dimension`` and ``max_seq_length``.
"""

from __future__ import annotations

import enum
import importlib.metadata
import os
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.core.errors import ConfigurationError, FailedPrecondition
from rag.models import artifacts

CHAMPION = "champion"

TAG_KIND = "kind"
TAG_SHA256 = "sha256"
TAG_MODEL_VERSION = "model_version"
TAG_DIMENSION = "dimension"
TAG_MAX_SEQ_LENGTH = "max_seq_length"
TAG_SOURCE_NAME = "source_name"

_ST_DATA = "model.sentence_transformer"  # mlflow.sentence_transformers' data folder
_REQUIREMENTS = ("rag-system", "mlflow", "torch", "sentence-transformers", "transformers")


class ModelKind(enum.StrEnum):
    EMBEDDER = "embedder"
    RERANKER = "reranker"
    GENERATOR = "generator"

    @property
    def registered_name(self) -> str:
        """The registered model's name in MLflow."""
        return f"rag-{self.value}"

    @property
    def triton_model(self) -> str:
        """The model's name in the Triton repository."""
        return self.value

    @classmethod
    def of_registered_name(cls, name: str) -> ModelKind | None:
        return next((kind for kind in cls if kind.registered_name == name), None)


@dataclass(frozen=True)
class PackagedModel:
    """An MLflow model folder ready to upload, and the tags of its version."""

    kind: ModelKind
    directory: Path
    weights: Path
    tags: dict[str, str]


def package_model(
    kind: ModelKind,
    source: Path | None,
    target: Path,
    *,
    name: str | None = None,
    cache_dir: Path | None = None,
) -> PackagedModel:
    """Load ``source`` with the runtime Triton will run (so a broken folder fails here, not at
    promotion) and write it to ``target`` (a new folder) as an MLflow model.

    ``source`` None means the packaged default weights (embedder and generator; no reranker
    ships). ``name`` labels the weights in ``model_version`` (default: the folder's name).
    ``cache_dir`` is where the generator keeps GGUF files converted to safetensors.
    """
    if kind is ModelKind.EMBEDDER:
        return _package_embedder(source, target, name)
    if source is None:
        if kind is ModelKind.RERANKER:
            raise ConfigurationError(
                "no reranker ships with RAG System: pass --path DIR, a sentence-transformers "
                "CrossEncoder folder (e.g. cross-encoder/ms-marco-MiniLM-L6-v2 saved from your cache)"
            )
        source = artifacts.default_generator_path()
        name = name or artifacts.DEFAULT_GENERATOR_NAME
    return _package_pyfunc(kind, source, target, name, cache_dir)


def _package_embedder(source: Path | None, target: Path, name: str | None) -> PackagedModel:
    import mlflow.sentence_transformers

    from rag.models.embedding import Embedder

    embedder = Embedder(source)
    label = name or (artifacts.DEFAULT_EMBEDDER_NAME if source is None else _label(source))
    mlflow.sentence_transformers.save_model(
        embedder.sentence_transformer, str(target), pip_requirements=_pip_requirements()
    )
    weights = target / _ST_DATA
    return PackagedModel(
        ModelKind.EMBEDDER,
        target,
        weights,
        # sentence-transformers re-saves the folder (its config files change, not its tensors):
        # the model_version stays the source folder's, so registering the packaged MiniLM names
        # it as the stack's default embedder does and promoting it leaves the index current.
        _tags(ModelKind.EMBEDDER, weights, label, embedder.dimension, embedder.max_seq_length, embedder.path),
    )


def _package_pyfunc(
    kind: ModelKind, source: Path, target: Path, name: str | None, cache_dir: Path | None
) -> PackagedModel:
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from rag.modelops import pyfunc

    if not source.exists():
        raise ConfigurationError(f"{kind} path {str(source)!r} does not exist")
    label = name or _label(source)
    if kind is ModelKind.RERANKER:
        from rag.models.reranking import Reranker

        reranker = Reranker(source)
        dimension, max_length = 1, reranker.max_length
        entry = "mlflow_reranker.py"
        signature = ModelSignature(
            inputs=Schema([ColSpec("string", "query"), ColSpec("string", "passage")]),
            outputs=Schema([ColSpec("float")]),
        )
    else:
        from rag.models.generation import Generator

        generator = Generator(source, cache_dir=cache_dir)
        dimension, max_length = generator.hidden_size, generator.context_length
        entry = "mlflow_generator.py"
        signature = ModelSignature(
            inputs=Schema([ColSpec("string", "prompt")]),
            outputs=Schema([ColSpec("string")]),
            params=ParamSchema(
                [ParamSpec("max_tokens", "long", 64), ParamSpec("temperature", "double", 0.0)]
            ),
        )
    staging = target.parent / f".{target.name}-weights"
    _copy_weights(source, staging / pyfunc.WEIGHTS_ARTIFACT)
    try:
        with warnings.catch_warnings():
            # The signature is explicit; an input example would make MLflow run the model.
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
            mlflow.pyfunc.save_model(
                path=str(target),
                python_model=str(Path(__file__).with_name(entry)),  # models from code
                artifacts={pyfunc.WEIGHTS_ARTIFACT: str(staging / pyfunc.WEIGHTS_ARTIFACT)},
                signature=signature,
                pip_requirements=_pip_requirements(),
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    weights = weights_in(target)
    return PackagedModel(kind, target, weights, _tags(kind, weights, label, dimension, max_length))


def _tags(
    kind: ModelKind, weights: Path, label: str, dimension: int, max_length: int, source: Path | None = None
) -> dict[str, str]:
    """``sha256`` checks the artifact as uploaded; ``model_version`` names what was registered
    (``source`` when given: the folder the weights came from)."""
    digest = artifacts.weights_digest(weights)
    named = (
        artifacts.model_version(source, label) if source else artifacts.model_version(weights, label, digest)
    )
    return {
        TAG_KIND: kind.value,
        TAG_SHA256: digest,
        TAG_MODEL_VERSION: named,
        TAG_DIMENSION: str(dimension),
        TAG_MAX_SEQ_LENGTH: str(max_length),
        TAG_SOURCE_NAME: label,
    }


def _label(source: Path) -> str:
    return source.stem if source.is_file() else source.resolve().name


def _copy_weights(source: Path, target: Path) -> None:
    """``source`` (a folder, or one file such as a GGUF) as the folder ``target``; hard links
    where the filesystem allows, so large weights are not copied twice."""
    target.parent.mkdir(parents=True, exist_ok=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, target, copy_function=link, ignore=shutil.ignore_patterns(".git*"))
    else:
        target.mkdir()
        link(str(source), str(target / source.name))


def _pip_requirements() -> list[str]:
    pins = []
    for package in _REQUIREMENTS:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def weights_in(model_dir: Path) -> Path:
    """The weights folder inside an MLflow model folder of one of the three kinds."""
    from mlflow.models import Model

    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        raise FailedPrecondition(f"the artifact holds no MLmodel file (found {_listing(model_dir)})")
    flavors = Model.load(str(mlmodel)).flavors
    if "sentence_transformers" in flavors:
        weights = model_dir / _ST_DATA
    else:
        entry = (flavors.get("python_function", {}).get("artifacts") or {}).get("weights") or {}
        if not entry.get("path"):
            raise FailedPrecondition(
                f"the artifact is neither a sentence_transformers model nor a pyfunc model with a "
                f"'weights' artifact (flavors: {sorted(flavors)})"
            )
        weights = model_dir / str(entry["path"])
    if not weights.exists():
        raise FailedPrecondition(f"the artifact's weights {weights.name!r} are missing")
    return weights


def check_weights(
    kind: ModelKind, weights: Path, tags: Mapping[str, str], *, embedding_dim: int | None = None
) -> None:
    """Refuse weights that are corrupt (digest differs from the ``sha256`` tag) or that the
    Triton model cannot serve. Raises :class:`FailedPrecondition` with the reason."""
    expected = tags.get(TAG_SHA256, "")
    if not expected:
        raise FailedPrecondition("the version has no sha256 tag: register it with `rag models register`")
    actual = artifacts.weights_digest(weights)
    if actual != expected:
        raise FailedPrecondition(
            f"the weights are corrupt: their sha256 is {actual[:12]}... but the version was "
            f"registered as {expected[:12]}..."
        )
    if tags.get(TAG_KIND) != kind.value:
        raise FailedPrecondition(f"the version is tagged kind={tags.get(TAG_KIND)!r}, not {kind.value!r}")
    if kind is ModelKind.EMBEDDER and embedding_dim is not None:
        dimension = tags.get(TAG_DIMENSION, "")
        if dimension != str(embedding_dim):
            raise FailedPrecondition(
                f"it makes {dimension or 'unknown'}-dimensional embeddings but Triton's embedder and "
                f"the chunks table hold {embedding_dim}: render the configs with --embedding-dim "
                f"{dimension or 'N'} and migrate the vector column first"
            )
    required = {
        ModelKind.EMBEDDER: ("config.json",),
        ModelKind.RERANKER: ("config.json",),
        ModelKind.GENERATOR: (),
    }[kind]
    missing = [name for name in required if not (weights / name).is_file()]
    if missing:
        raise FailedPrecondition(f"the weights lack {', '.join(missing)}")


def smoke_test(kind: ModelKind, weights: Path, *, cache_dir: Path | None = None) -> None:
    """Load ``weights`` with the runtime Triton's model.py uses and run one inference, on CPU.

    Catches weights that pass the digest check but do not load (corrupt when uploaded, or
    made by an incompatible library version) before Triton is asked to load them: a version
    that fails in Triton stays marked failed there until a version of that number loads.
    Raises :class:`FailedPrecondition` with the loader's own error.
    """
    try:
        if kind is ModelKind.EMBEDDER:
            from rag.models.embedding import Embedder

            Embedder(weights).encode(["smoke test"])
        elif kind is ModelKind.RERANKER:
            from rag.models.reranking import Reranker

            Reranker(weights).score("smoke test", ["smoke test"])
        else:
            from rag.models.generation import Generator

            Generator(weights, cache_dir=cache_dir).generate("Hello", 1)
    except Exception as exc:  # loaders raise anything from OSError to SafetensorError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise FailedPrecondition(f"the weights do not load: {type(exc).__name__}: {first_line}") from None


def _listing(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return ", ".join(names[:8]) or "nothing"
