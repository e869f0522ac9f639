from __future__ import annotations

from rag.core.prompts import NO_ANSWER, Source, build_prompt

SOURCES = [
    Source(
        1,
        11,
        "d1",
        "Vitamin D",
        1,
        "Vitamin D helps absorb calcium. Sunlight on the skin produces vitamin D.",
    ),
    Source(2, 22, "d2", "Sleep", None, "Deep sleep consolidates memories. Adults need seven hours."),
]


def test_prompt_numbers_sources_and_ends_with_the_question() -> None:
    prompt = build_prompt("Why sleep?", SOURCES)
    assert "[1] (Vitamin D, page 1) Vitamin D helps" in prompt and "[2] (Sleep) Deep sleep" in prompt
    assert prompt.endswith("Question: Why sleep?\nAnswer:")
    assert NO_ANSWER
