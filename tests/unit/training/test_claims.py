"""Labelled (claim, sentence) pairs from a claims file: kinds, labels, and folds by claim."""

from __future__ import annotations

import json
from pathlib import Path

from rag.training.claims import corpus_sentences, folds, load_claims, support_pairs


def write(tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps({"_id": i, "title": "", "text": text})
            for i, text in [
                ("d1", "Vitamin D comes from sunlight. It helps bones. Winter lowers it."),
                ("d2", "Statins lower cholesterol. They have side effects."),
                ("d3", "Coffee is drunk worldwide. It contains caffeine."),
            ]
        )
    )
    claims = tmp_path / "claims.jsonl"
    rows = [
        {
            "id": "1",
            "claim": "Sunlight makes vitamin D.",
            "evidence": [
                {
                    "doc_id": "d1",
                    "label": "SUPPORT",
                    "sentences": [{"index": 0, "text": "Vitamin D comes from sunlight."}],
                }
            ],
        },
        {
            "id": "2",
            "claim": "Statins raise cholesterol.",
            "evidence": [
                {
                    "doc_id": "d2",
                    "label": "CONTRADICT",
                    "sentences": [{"index": 0, "text": "Statins lower cholesterol."}],
                }
            ],
        },
        {"id": "3", "claim": "No evidence here.", "evidence": []},
    ]
    claims.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return corpus, claims


def test_pairs_label_support_only_and_never_mix_a_claims_gold_into_its_negatives(tmp_path: Path) -> None:
    corpus_path, claims_path = write(tmp_path)
    corpus = corpus_sentences(corpus_path)
    assert corpus["d1"] == ["Vitamin D comes from sunlight.", "It helps bones.", "Winter lowers it."]
    claims = load_claims(claims_path)
    pairs = support_pairs(claims, corpus, neutral=2, random_count=2, seed=1)
    by_claim = {c: [p for p in pairs if p.claim_id == c] for c in ("1", "2", "3")}
    assert by_claim["3"] == []  # no evidence, no pairs
    one = by_claim["1"]
    assert [(p.sentence, p.label) for p in one if p.kind == "support"] == [
        ("Vitamin D comes from sunlight.", 1.0)
    ]
    neutral = [p.sentence for p in one if p.kind == "neutral"]
    assert sorted(neutral) == ["It helps bones.", "Winter lowers it."]
    randoms = [p.sentence for p in one if p.kind == "random"]
    assert len(randoms) == 2
    for seed in range(20):  # random sentences never come from an abstract the claim cites
        for pair in support_pairs(claims, corpus, seed=seed):
            cited = {"1": "d1", "2": "d2"}[pair.claim_id]
            assert pair.kind != "random" or pair.sentence not in corpus[cited]
    two = by_claim["2"]
    assert [(p.kind, p.label) for p in two if p.sentence == "Statins lower cholesterol."] == [
        ("contradict", 0.0)
    ]
    assert all(p.label == 0.0 for p in pairs if p.kind != "support")


def test_folds_split_claims_with_evidence_reproducibly(tmp_path: Path) -> None:
    _, claims_path = write(tmp_path)
    claims = load_claims(claims_path)
    parts = folds(claims, 2, seed=3)
    assert sorted(c.id for part in parts for c in part) == ["1", "2"]
    assert parts == folds(claims, 2, seed=3)
