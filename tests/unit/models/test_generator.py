from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.core.errors import ConfigurationError, InvalidInput
from rag.models.generation import Generator

PROMPT = "Retrieval first, then generation."


@pytest.fixture(scope="module")
def generator(tiny_gpt2_path: Path) -> Generator:
    # No repetition penalty: greedy output must equal transformers' own generate().
    return Generator(tiny_gpt2_path, dtype="float32", repetition_penalty=1.0)


def counting() -> tuple[list[int], Callable[[], bool]]:
    """An is_cancelled callback that never cancels and counts decoding steps."""
    calls = [0]

    def is_cancelled() -> bool:
        calls[0] += 1
        return False

    return calls, is_cancelled


def test_greedy_stream_equals_transformers_generate(generator: Generator, tiny_gpt2_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_gpt2_path))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_gpt2_path)).eval()  # type: ignore[no-untyped-call]
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=30, do_sample=False, pad_token_id=0)
    expected = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

    assert generator.generate(PROMPT, 30) == expected


def test_repetition_penalty_reduces_loops(tiny_gpt2_path: Path, generator: Generator) -> None:
    plain = generator.generate(PROMPT, 60)
    penalized = Generator(tiny_gpt2_path, dtype="float32", repetition_penalty=2.0).generate(PROMPT, 60)

    def distinct_ratio(text: str) -> float:
        return len(set(text)) / max(1, len(text))

    assert penalized != plain
    assert distinct_ratio(penalized) > distinct_ratio(plain)


def test_repetition_penalty_below_one_is_refused(tiny_gpt2_path: Path) -> None:
    from rag.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="repetition_penalty"):
        Generator(tiny_gpt2_path, repetition_penalty=0.5)


def test_streams_pieces_and_stops_at_max_tokens(generator: Generator) -> None:
    steps, is_cancelled = counting()
    pieces = list(generator.stream(PROMPT, 25, is_cancelled=is_cancelled))

    assert len(pieces) > 1
    assert steps[0] == 25
    assert len("".join(pieces)) == 25  # one character per token with the tiny tokenizer


def test_stop_sequence_ends_the_stream_and_is_not_emitted(generator: Generator) -> None:
    full = generator.generate(PROMPT, 40)
    stop = full[6:9]  # three tokens: the stop spans several steps
    expected = full[: full.index(stop)]

    steps, is_cancelled = counting()
    text = "".join(generator.stream(PROMPT, 40, stop=["never-there", stop], is_cancelled=is_cancelled))

    assert text == expected
    assert stop not in text
    assert steps[0] == len(expected) + len(stop)  # no token decoded past the stop


def test_text_held_for_a_possible_stop_is_released_at_the_end(generator: Generator) -> None:
    full = generator.generate(PROMPT, 12)
    # The last characters begin the stop sequence but the budget ends before it completes.
    stop = full[-2:] + "\x00"

    assert generator.generate(PROMPT, 12, stop=[stop]) == full


def test_cancellation_stops_within_one_token(generator: Generator) -> None:
    cancelled = False
    steps = 0

    def is_cancelled() -> bool:
        nonlocal steps
        steps += 1
        return cancelled

    received = []
    for piece in generator.stream(PROMPT, 50, is_cancelled=is_cancelled):
        received.append(piece)
        cancelled = True

    assert len(received) == 1
    assert steps == 2  # the step that produced the piece, then the check that ended it


def test_cancelled_before_start_yields_nothing(generator: Generator) -> None:
    assert list(generator.stream(PROMPT, 10, is_cancelled=lambda: True)) == []


def test_sampling_is_repeatable_with_a_seed(generator: Generator) -> None:
    first = generator.generate(PROMPT, 30, temperature=1.0, seed=7)
    again = generator.generate(PROMPT, 30, temperature=1.0, seed=7)
    other = generator.generate(PROMPT, 30, temperature=1.0, seed=8)

    assert first == again
    assert first != other
    assert len(first) == 30


def test_budget_is_clamped_to_the_context(generator: Generator) -> None:
    prompt = "x" * (generator.context_length - 4)

    assert len(generator.generate(prompt, 100)) == 4


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "temperature", "field"),
    [
        ("   ", 5, 0.0, "PROMPT"),
        (PROMPT, 0, 0.0, "MAX_TOKENS"),
        (PROMPT, 5, -0.1, "TEMPERATURE"),
        (PROMPT, 5, 2.5, "TEMPERATURE"),
        (PROMPT, 5, float("nan"), "TEMPERATURE"),
        ("y" * 300, 5, 0.0, "PROMPT"),
    ],
)
def test_bad_arguments_fail_before_any_token(
    generator: Generator, prompt: str, max_tokens: int, temperature: float, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        generator.stream(prompt, max_tokens, temperature)  # no iteration needed

    assert caught.value.field == field


def test_chat_template_wraps_the_prompt(tiny_chat_gpt2_path: Path) -> None:
    chat = Generator(tiny_chat_gpt2_path, dtype="float32")
    plain = Generator(tiny_chat_gpt2_path, dtype="float32", use_chat_template=False)

    assert chat.format_prompt("hi") == "[user:hi]>"
    assert plain.format_prompt("hi") == "hi"
    assert len(chat.generate("hi", 8)) == 8


def test_model_version_is_a_content_digest(generator: Generator, tiny_gpt2_path: Path) -> None:
    assert generator.model_version.startswith(f"{tiny_gpt2_path.name}@sha256:")
    assert Generator(tiny_gpt2_path, model_version="gen:3").model_version == "gen:3"


def test_unknown_dtype_and_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="dtype"):
        Generator(tmp_path, dtype="int3")
    with pytest.raises(ConfigurationError, match=r"exactly one \.gguf"):
        Generator(tmp_path)
