from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rag.core.errors import ConfigurationError
from rag.models.artifacts import default_embedder_path, resolve_device, weights_digest
from rag.models.embedding import Embedder
from rag.models.tokens import TokenCounter

TEXTS = [
    "PostgreSQL stores vectors with pgvector.",
    "Triton batches requests dynamically.",
    "",
    "Ünïcödé text and emoji 🚀 survive.",
]


def test_vectors_are_normalized_float32_rows(embedder: Embedder) -> None:
    vectors = embedder.encode(TEXTS)

    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_vectors_equal_direct_sentence_transformers(embedder: Embedder) -> None:
    from sentence_transformers import SentenceTransformer

    direct = SentenceTransformer(str(default_embedder_path()), device="cpu")
    expected = direct.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)

    np.testing.assert_allclose(embedder.encode(TEXTS), expected, rtol=0, atol=1e-6)


def test_batch_size_does_not_change_vectors(embedder: Embedder) -> None:
    texts = [f"document number {i} about retrieval" for i in range(40)]
    whole = embedder.encode(texts)
    one_by_one = np.vstack([embedder.encode([text]) for text in texts[:5]])

    np.testing.assert_allclose(whole[:5], one_by_one, atol=1e-5)


def test_empty_input_gives_empty_matrix(embedder: Embedder) -> None:
    assert embedder.encode([]).shape == (0, 384)


def test_describes_itself(embedder: Embedder) -> None:
    assert embedder.dimension == 384
    assert embedder.max_seq_length == 256
    digest = weights_digest(default_embedder_path())
    assert embedder.model_version == f"all-MiniLM-L6-v2@sha256:{digest[:12]}"


def test_explicit_model_version_wins() -> None:
    assert Embedder(default_embedder_path(), model_version="minilm:7").model_version == "minilm:7"


def test_counts_tokens_without_special_tokens_or_truncation(embedder: Embedder) -> None:
    assert embedder.count_tokens("hello world") == 2
    assert embedder.count_tokens("") == 0
    assert embedder.count_tokens("word " * 1000) == 1000
    assert embedder.token_counter.max_text_tokens == 254  # 256 minus [CLS] and [SEP]


TEXTS = [
    "Chunking sizes chunks in embedder tokens, not characters.",
    "",
    "   leading and trailing   whitespace\n\n\tand tabs  ",
    "Ünïcödé, naïve café — “quotes” and emoji 🧬🔬 and CJK 漢字かな",
    "word " * 1000,  # far past the model's 128-token truncation in tokenizer.json
    "ACE2-mediated SARS-CoV-2 entry; IC50=3.2µM (p<0.001) [12]",
]


def test_token_counter_alone_agrees_with_embedder(embedder: Embedder) -> None:
    """Without transformers (tokenizers reads tokenizer.json), the same counts as the
    embedder's own transformers tokenizer."""
    counter = TokenCounter()

    assert [counter.count(t) for t in TEXTS] == [embedder.count_tokens(t) for t in TEXTS]
    assert counter.count("word " * 1000) == 1000  # never truncated
    assert counter.max_text_tokens == 254


def test_token_counter_without_tokenizer_json_uses_transformers(embedder: Embedder, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "slow"
    shutil.copytree(default_embedder_path(), folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "tokenizer.json").unlink()  # only vocab.txt: transformers builds the tokenizer
    counter = TokenCounter(folder)

    assert [counter.count(t) for t in TEXTS] == [embedder.count_tokens(t) for t in TEXTS]
    assert counter.max_text_tokens == 254


def test_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no sentence-transformers model"):
        Embedder(tmp_path)


def test_unknown_device_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="device must be"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_says_how_to_fix() -> None:
    with pytest.raises(ConfigurationError, match="ENABLE_GPU=false"):
        resolve_device("cuda")
