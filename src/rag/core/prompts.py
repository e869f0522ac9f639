"""Prompts for grounded generation: numbered sources, an instruction to cite them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NO_ANSWER = "I could not find information about this in your documents."

SYSTEM = (
    "You answer questions using only the numbered sources below. Cite the sources you use with "
    "their numbers in square brackets, like [1]. If the sources do not answer the question, say "
    "that you do not know. Be brief."
)


@dataclass(frozen=True)
class Source:
    """A retrieved chunk as the prompt shows it; ``number`` is its citation marker."""

    number: int
    chunk_id: int
    document_id: str
    title: str
    page: int | None
    text: str


def build_prompt(question: str, sources: Sequence[Source], *, max_source_chars: int = 1200) -> str:
    lines = [SYSTEM, "", "Sources:"]
    for source in sources:
        where = f"{source.title}, page {source.page}" if source.page else source.title
        lines.append(f"[{source.number}] ({where}) {source.text[:max_source_chars].strip()}")
    lines += ["", f"Question: {question.strip()}", "Answer:"]
    return "\n".join(lines)
