"""Labelled (claim, sentence) pairs for the support model, from a claims file.

A claims file has one JSON object per line, in SciFact's layout: ``id``, ``claim`` and
``evidence``, a list of ``{doc_id, label: SUPPORT | CONTRADICT, sentences: [{index, text}]}``.
Each claim with evidence gives:

- ``support``: each SUPPORT rationale sentence (label 1);
- ``contradict``: each CONTRADICT rationale sentence (label 0: it does not support the claim);
- ``neutral``: up to ``neutral`` other sentences of the same evidence abstracts (label 0, the
  hard negatives: same topic, no support);
- ``random``: ``random`` sentences of other abstracts of the corpus (label 0).

The flag measure of issue 16 uses support against contradict and random; neutral pairs are
reported apart and used in training.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.core.grounding import sentence_spans

KINDS = ("support", "contradict", "neutral", "random")


@dataclass(frozen=True)
class Rationale:
    doc_id: str
    label: str  # SUPPORT | CONTRADICT
    sentences: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    evidence: tuple[Rationale, ...]


@dataclass(frozen=True)
class SupportPair:
    claim_id: str
    claim: str
    sentence: str
    label: float  # 1.0: the sentence supports the claim
    kind: str  # one of KINDS


def parse_claims(lines: Iterable[str], *, all_claims: bool = False) -> list[Claim]:
    """Claims of a SciFact-format JSONL (evidence without sentences is left out); only those with
    a gold rationale unless ``all_claims``."""
    claims = []
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        evidence = tuple(
            Rationale(
                str(e["doc_id"]),
                str(e["label"]).upper(),
                tuple(str(s["text"]).strip() for s in e["sentences"]),
            )
            for e in row.get("evidence") or ()
            if e.get("sentences")
        )
        if evidence or all_claims:
            claims.append(Claim(str(row["id"]), str(row["claim"]), evidence))
    return claims


def load_claims(path: Path, *, all_claims: bool = False) -> list[Claim]:
    with path.open(encoding="utf-8") as lines:
        return parse_claims(lines, all_claims=all_claims)


def corpus_sentences(path: Path) -> dict[str, list[str]]:
    """Each abstract of a BEIR ``corpus.jsonl`` cut into sentences the way answers are."""
    out: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            text = str(row.get("text", ""))
            out[str(row["_id"])] = [text[s.start : s.end] for s in sentence_spans(text)]
    return out


def support_pairs(
    claims: Iterable[Claim],
    corpus: Mapping[str, Sequence[str]],
    *,
    neutral: int = 2,
    random_count: int = 2,
    seed: int = 13,
) -> list[SupportPair]:
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    doc_ids = sorted(corpus)
    pairs: list[SupportPair] = []
    for claim in claims:
        if not claim.evidence:
            continue
        gold: set[str] = set()
        for rationale in claim.evidence:
            kind = "support" if rationale.label == "SUPPORT" else "contradict"
            for sentence in rationale.sentences:
                pairs.append(SupportPair(claim.id, claim.claim, sentence, float(kind == "support"), kind))
            gold.update(rationale.sentences)
        cited = {rationale.doc_id for rationale in claim.evidence}
        others = [s for doc_id in sorted(cited) for s in corpus.get(doc_id, ()) if s not in gold]
        for sentence in rng.sample(others, min(neutral, len(others))):
            pairs.append(SupportPair(claim.id, claim.claim, sentence, 0.0, "neutral"))
        drawn = 0
        while drawn < random_count and doc_ids:
            doc_id = rng.choice(doc_ids)
            if doc_id in cited or not corpus[doc_id]:
                continue
            pairs.append(SupportPair(claim.id, claim.claim, rng.choice(list(corpus[doc_id])), 0.0, "random"))
            drawn += 1
    return pairs


def folds(claims: Sequence[Claim], k: int, *, seed: int = 13) -> list[list[Claim]]:
    """``claims`` (those with evidence) in ``k`` folds of a seeded shuffle: folds never split a claim."""
    with_evidence = [c for c in claims if c.evidence]
    random.Random(seed).shuffle(with_evidence)  # noqa: S311 (a reproducible split)
    return [with_evidence[i::k] for i in range(k)]
