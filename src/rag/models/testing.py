"""Tiny random-weight models for tests, built offline in well under a second.

They exercise the real loading and inference code paths (the same classes serve the real
weights) without downloading anything. Their outputs are meaningless but deterministic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rag.core.documents import EMBEDDING_DIMENSION
from rag.models import artifacts

TINY_EOS = "<|endoftext|>"
# Printable ASCII plus newline: one character is one token, so a test can count tokens by
# counting characters.
_TINY_ALPHABET = [chr(c) for c in range(32, 127)] + ["\n"]


def build_tiny_cross_encoder(path: str | Path, *, seed: int = 0, num_labels: int = 1) -> Path:
    """Write a 2-layer BERT cross-encoder to ``path`` and return it.

    ``num_labels`` other than 1 makes a classifier, which the reranker must refuse.

    The tokenizer is all-MiniLM-L6-v2's WordPiece vocabulary from the bundled embedder, so
    real text tokenizes as it would for a MiniLM cross-encoder.
    """
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    target = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(str(artifacts.default_embedder_path()), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    config.num_labels = num_labels
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    model.save_pretrained(str(target))
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(str(target))
    # Round-trip through CrossEncoder so the folder has sentence-transformers' own layout.
    CrossEncoder(str(target), device="cpu", local_files_only=True).save_pretrained(str(target))
    return target


def build_tiny_gpt2(
    path: str | Path, *, seed: int = 0, chat_template: str | None = None, n_positions: int = 256
) -> Path:
    """Write a 2-layer, width-64 GPT-2 with a character-level tokenizer to ``path``.

    The end-of-sequence and unknown-token embeddings are zeroed, so greedy decoding never
    picks them (their logits are 0 while the largest of the others is positive): streams
    end by MAX_TOKENS, a stop sequence or cancellation, which is what tests control, and
    every generated token is one visible character. ``chat_template`` (Jinja) gives
    the tokenizer a chat template.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    target = Path(path)
    vocab = {TINY_EOS: 0, "<unk>": 1} | {c: i + 2 for i, c in enumerate(_TINY_ALPHABET)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))  # noqa: S106
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token=TINY_EOS,
        bos_token=TINY_EOS,
        unk_token="<unk>",  # noqa: S106
        model_max_length=n_positions,
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=n_positions,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        # Large initial weights make greedy decoding wander over the alphabet instead of
        # repeating one character, so stop-sequence tests have varied text to work on.
        initializer_range=0.5,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.wte.weight[:2].zero_()  # EOS and <unk> (tied to the output layer)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return target


def build_tiny_sentence_transformer(
    path: str | Path, *, dimension: int = EMBEDDING_DIMENSION, seed: int = 0
) -> Path:
    """Write a 2-layer, width-32 BERT sentence-transformer whose embeddings have ``dimension``
    components (mean pooling, a dense projection, normalization) to ``path``.

    It fits the embedder's Triton config (EMBEDDING_DIMENSION by default) while loading in a fraction of
    MiniLM's time, so promotion tests can swap embedders quickly. Its vectors are meaningless.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    target = Path(path)
    staging = target.parent / f".{target.name}-bert"
    tokenizer = AutoTokenizer.from_pretrained(str(artifacts.default_embedder_path()), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        BertModel(config).save_pretrained(str(staging))
        tokenizer.model_max_length = config.max_position_embeddings
        tokenizer.save_pretrained(str(staging))
        transformer = Transformer(str(staging), max_seq_length=config.max_position_embeddings)
        pooling = Pooling(config.hidden_size, pooling_mode="mean")
        dense = Dense(config.hidden_size, dimension, activation_function=torch.nn.Tanh())
        model = SentenceTransformer(modules=[transformer, pooling, dense, Normalize()], device="cpu")
    model.save(str(target))
    shutil.rmtree(staging, ignore_errors=True)
    return target
