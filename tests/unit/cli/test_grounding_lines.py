"""How the CLI and the demo print a grounding: each sentence marked, with what it was checked against."""

from __future__ import annotations

from rag.client import grounding_lines
from rag.proto.rag.v1 import common_pb2, generation_pb2


def test_each_sentence_shows_its_flag_support_and_evidence() -> None:
    evidence = common_pb2.Citation(chunk_id=7, document_title="Vitamin D", quote="Sunlight makes vitamin D.")
    grounding = generation_pb2.Grounding(
        answer="Skin makes vitamin D [1]. It cures diabetes [1].",
        sentences=[
            generation_pb2.AnswerSentence(
                text="Skin makes vitamin D [1].", support=0.8, supported=True, evidence=evidence
            ),
            generation_pb2.AnswerSentence(
                text="It cures diabetes [1].", support=0.05, supported=False, evidence=evidence
            ),
        ],
        grounded_fraction=0.5,
        threshold=0.17,
        verifier_model_version="embedder-cosine",
    )
    lines = grounding_lines(grounding)
    assert lines[0].startswith("Grounding: 50% of the sentences supported (support >= 0.17")
    assert lines[1] == "  SUPPORTED   0.80  Skin makes vitamin D [1]."
    assert lines[2] == '      by Vitamin D (chunk 7): "Sunlight makes vitamin D."'
    assert lines[3] == "  UNSUPPORTED 0.05  It cures diabetes [1]."
    assert "not enough" in lines[4]
