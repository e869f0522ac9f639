"""Counting tokens the way a model's tokenizer does, without loading the model.

Chunking sizes chunks in embedder tokens. Loading a tokenizer takes milliseconds and no
torch, so ingestion tasks can count tokens without loading the weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.models.artifacts import default_embedder_path


class TokenCounter:
    """Counts the tokens of a text with the tokenizer of a model folder.

    ``count`` excludes the special tokens a model adds around each input (``[CLS]``,
    ``[SEP]`` ...) and never truncates; ``max_text_tokens`` is how many text tokens fit in
    one model input once those special tokens are added.
    """

    def __init__(self, model_path: str | Path | None = None, *, max_seq_length: int | None = None):
        from transformers import AutoTokenizer

        path = Path(model_path) if model_path else default_embedder_path()
        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        limit = max_seq_length or _sentence_transformers_max_length(path)
        limit = limit or int(self._tokenizer.model_max_length)
        self.max_text_tokens: int = limit - int(self._tokenizer.num_special_tokens_to_add(False))

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, max_seq_length: int) -> TokenCounter:
        """Wrap an already loaded tokenizer (the embedder's own)."""
        counter = cls.__new__(cls)
        counter._tokenizer = tokenizer
        counter.max_text_tokens = max_seq_length - int(tokenizer.num_special_tokens_to_add(False))
        return counter

    def count(self, text: str) -> int:
        """Number of tokens of ``text`` alone (no special tokens, no truncation)."""
        ids = self._tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return len(ids)

    __call__ = count


def _sentence_transformers_max_length(path: Path) -> int | None:
    config = path / "sentence_bert_config.json"
    if not config.is_file():
        return None
    import json

    value = json.loads(config.read_text()).get("max_seq_length")
    return int(value) if value else None
