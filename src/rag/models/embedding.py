"""Sentence embeddings with sentence-transformers (all-MiniLM-L6-v2 by default)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rag.core.errors import ConfigurationError
from rag.models import artifacts
from rag.models.tokens import TokenCounter


class Embedder:
    """Encodes texts into L2-normalized float32 vectors with a sentence-transformers folder.

    ``model_path`` is any sentence-transformers model folder; None means the bundled
    all-MiniLM-L6-v2. Nothing is downloaded. ``model_version`` names the weights (pass the
    registry's version, or let it default to a content digest of the folder).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        model_version: str | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        path = Path(model_path) if model_path else artifacts.default_embedder_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigurationError(
                f"embedder path {str(path)!r} holds no sentence-transformers model "
                "(expected modules.json or config.json)"
            )
        self.path = path
        self.device = artifacts.resolve_device(device)
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        dimension = _embedding_dimension(self._model)
        if dimension is None:
            raise ConfigurationError(f"embedder {str(path)!r} does not report its dimension")
        self.dimension: int = dimension
        limit: int | None = self._model.max_seq_length
        self.max_seq_length: int = int(limit or self._model.tokenizer.model_max_length)
        name = artifacts.DEFAULT_EMBEDDER_NAME if model_path is None else None
        self.model_version: str = model_version or artifacts.model_version(path, name)
        self._counter = TokenCounter.from_tokenizer(self._model.tokenizer, self.max_seq_length)

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts``: an array of shape (len(texts), dimension), each row of norm 1."""
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model, without special tokens and without truncation.

        Longer inputs than ``token_counter.max_text_tokens`` are truncated when encoded.
        """
        return self._counter.count(text)

    @property
    def token_counter(self) -> TokenCounter:
        return self._counter

    @property
    def sentence_transformer(self) -> Any:
        """The loaded ``SentenceTransformer`` (what MLflow's sentence_transformers flavor saves)."""
        return self._model


def _embedding_dimension(model: Any) -> int | None:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension (now deprecated).
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    value = getter()
    return int(value) if value is not None else None
