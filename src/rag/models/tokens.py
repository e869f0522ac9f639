"""Counting tokens the way a model's tokenizer does, without loading the model.

Chunking sizes chunks in embedder tokens. Ingestion tasks count tokens without the weights and,
when the model folder has a ``tokenizer.json`` (every fast tokenizer does), without importing
transformers or torch either: the ``tokenizers`` library reads the same file transformers' fast
tokenizer wraps. That import took 2 s of every ingestion task's start (the DAG maps a task per
batch of documents); ``tokenizers`` alone takes a few milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.models.artifacts import default_embedder_path


class TokenCounter:
    """Counts the tokens of a text with the tokenizer of a model folder.

    ``count`` excludes the special tokens a model adds around each input (``[CLS]``,
    ``[SEP]`` ...) and never truncates; ``max_text_tokens`` is how many text tokens fit in
    one model input once those special tokens are added.
    """

    _count: Callable[[str], int]
    max_text_tokens: int

    def __init__(self, model_path: str | Path | None = None, *, max_seq_length: int | None = None):
        path = Path(model_path) if model_path else default_embedder_path()
        limit = max_seq_length or _sentence_transformers_max_length(path)
        if (path / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            tokenizer.no_truncation()  # the file may carry the model's truncation and padding
            tokenizer.no_padding()
            processor = tokenizer.post_processor
            special = int(processor.num_special_tokens_to_add(False)) if processor is not None else 0
            limit = limit or _tokenizer_config_max_length(path)
            self._count = lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)
        else:  # a slow (Python) tokenizer only: transformers it is
            from transformers import AutoTokenizer

            loaded: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            special = int(loaded.num_special_tokens_to_add(False))
            limit = limit or int(loaded.model_max_length)
            self._count = _transformers_count(loaded)
        if not limit:
            raise ValueError(f"{path}: no max_seq_length (sentence_bert_config.json) or model_max_length")
        self.max_text_tokens = limit - special

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, max_seq_length: int) -> TokenCounter:
        """Wrap an already loaded transformers tokenizer (the embedder's own)."""
        counter = cls.__new__(cls)
        counter._count = _transformers_count(tokenizer)
        counter.max_text_tokens = max_seq_length - int(tokenizer.num_special_tokens_to_add(False))
        return counter

    def count(self, text: str) -> int:
        """Number of tokens of ``text`` alone (no special tokens, no truncation)."""
        return self._count(text)

    __call__ = count


def _transformers_count(tokenizer: Any) -> Callable[[str], int]:
    def count(text: str) -> int:
        ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return len(ids)

    return count


def _tokenizer_config_max_length(path: Path) -> int | None:
    config = path / "tokenizer_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text()).get("model_max_length")
    # transformers writes a huge sentinel (1e30) when a tokenizer has no limit.
    return int(value) if isinstance(value, int | float) and 0 < value < 1_000_000 else None


def _sentence_transformers_max_length(path: Path) -> int | None:
    config = path / "sentence_bert_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text()).get("max_seq_length")
    return int(value) if value else None
