"""The support model measured on labelled (claim, sentence) pairs, cross-validated by claim.

Pairs come from a claims file (:mod:`rag.training.claims`): SUPPORT rationales are supported;
CONTRADICT rationales, other sentences of the same abstracts ("neutral") and random sentences
are not. For each fold the calibration (a logistic fit of P(supports | features)) and the threshold
are chosen on the other folds; the threshold is the highest one at which the flagged pairs
(support below it) are unsupported with precision >= --min-flag-precision on those folds. The
held-out fold then reports:

- flag precision and recall, over support against contradict and random pairs (issue 16's set);
- the share of each kind flagged (neutral pairs included);
- evidence selection: how often the best-scored sentence, among the sentences of the claim's
  evidence abstracts and of four random abstracts, is a gold rationale.

Scorers: ``cosine`` (the product's ``EmbeddingSupport``: the packaged all-MiniLM-L6-v2's cosine
similarity and the claim's word overlap with the sentence) and ``verifier`` (a cross-encoder
trained per fold on the other folds' pairs from the packaged MiniLM encoder). The last lines
give the calibration and threshold fitted on all claims: the values the product's defaults take.

    python -m bench.support                       # cosine, 5 folds, SciFact train claims
    python -m bench.support --scorer verifier --verifier-epochs 1
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench import beir, report
from rag.core.grounding import word_overlap
from rag.training.claims import KINDS, Claim, SupportPair, corpus_sentences, folds, load_claims, support_pairs

# The features of each pair, one row per pair.
Scores = Callable[[Sequence[tuple[str, str]]], NDArray[np.float32]]
FLAG_KINDS = ("support", "contradict", "random")


def cosine_scorer() -> Scores:
    from sentence_transformers import SentenceTransformer

    from rag.models.artifacts import default_embedder_path

    model = SentenceTransformer(str(default_embedder_path()), device="cpu")

    def score(pairs: Sequence[tuple[str, str]]) -> NDArray[np.float32]:
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        row = {t: i for i, t in enumerate(texts)}
        vectors: NDArray[np.float32] = np.asarray(
            model.encode(texts, normalize_embeddings=True, batch_size=64, convert_to_numpy=True),
            dtype=np.float32,
        )
        a = vectors[[row[c] for c, _ in pairs]]
        b = vectors[[row[s] for _, s in pairs]]
        cosine = np.einsum("ij,ij->i", a, b).astype(np.float32)
        overlap = np.array([word_overlap(c, s) for c, s in pairs], dtype=np.float32)
        features: NDArray[np.float32] = np.column_stack([cosine, overlap])
        return features

    return score


def verifier_scorer(train: Sequence[SupportPair], out_dir: Path, epochs: int) -> Scores:
    from sentence_transformers import CrossEncoder

    from rag.models.artifacts import default_embedder_path
    from rag.training.budget import TrainingParams
    from rag.training.candidates import Pair
    from rag.training.cross_encoder import train_cross_encoder

    train_cross_encoder(
        default_embedder_path(),
        [Pair(p.claim, p.sentence, p.label) for p in train],
        out_dir,
        TrainingParams(epochs=epochs, max_length=160),
        progress=lambda line: print(f"    {line}", file=sys.stderr),
    )
    model = CrossEncoder(str(out_dir), device="cpu", local_files_only=True)

    def score(pairs: Sequence[tuple[str, str]]) -> NDArray[np.float32]:
        out = model.predict(list(pairs), batch_size=64, show_progress_bar=False, convert_to_numpy=True)
        scores: NDArray[np.float32] = np.asarray(out, dtype=np.float32).reshape(-1, 1)
        return scores

    return score


def calibrate(features: NDArray[np.float32], labels: NDArray[np.float32]) -> tuple[list[float], float]:
    """(weights, intercept) of the logistic fit of the label on the features."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=100.0).fit(features, labels.astype(int))
    return [float(w) for w in fit.coef_[0]], float(fit.intercept_[0])


def probability(
    features: NDArray[np.float32], weights: Sequence[float], intercept: float
) -> NDArray[np.float32]:
    logit = features @ np.asarray(weights, dtype=np.float32) + intercept
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float32)


def calibrated(score: Scores, weights: Sequence[float], intercept: float) -> Scores:
    return lambda pairs: probability(score(pairs), weights, intercept)


def flag_measures(
    support: NDArray[np.float32], labels: NDArray[np.float32], threshold: float
) -> dict[str, float]:
    flagged = support < threshold
    unsupported = labels == 0
    return {
        "flag_precision": float(unsupported[flagged].mean()) if flagged.any() else float("nan"),
        "flag_recall": float(flagged[unsupported].mean()) if unsupported.any() else float("nan"),
        "supported_kept": float((~flagged)[~unsupported].mean()) if (~unsupported).any() else float("nan"),
        "flagged": int(flagged.sum()),
    }


def choose_threshold(
    support: NDArray[np.float32], labels: NDArray[np.float32], min_precision: float
) -> float:
    """The highest threshold whose flags are unsupported with precision >= ``min_precision``."""
    best = 0.0
    for t in np.unique(support):
        m = flag_measures(support, labels, float(t) + 1e-6)
        if m["flagged"] and m["flag_precision"] >= min_precision:
            best = float(t) + 1e-6
    return best


def selection(claims: Sequence[Claim], corpus: dict[str, list[str]], rank: Scores, seed: int) -> float:
    rng = random.Random(seed)
    doc_ids = sorted(corpus)
    hits = 0
    for claim in claims:
        gold = {s for rationale in claim.evidence for s in rationale.sentences}
        docs = sorted({rationale.doc_id for rationale in claim.evidence}) + rng.sample(doc_ids, 4)
        candidates = [s for d in docs for s in corpus.get(d, [])]
        scores = rank([(claim.claim, s) for s in candidates])
        hits += candidates[int(np.argmax(scores))] in gold
    return hits / max(1, len(claims))


def arrays(
    pairs: Sequence[SupportPair], kinds: Sequence[str]
) -> tuple[list[SupportPair], NDArray[np.float32]]:
    chosen = [p for p in pairs if p.kind in kinds]
    return chosen, np.array([p.label for p in chosen], dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=beir.default_data(), help="BEIR folder with corpus.jsonl"
    )
    parser.add_argument("--claims", type=Path, default=None, help="default: DATA/claims_train.jsonl")
    parser.add_argument("--scorer", choices=["cosine", "verifier"], default="cosine")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-fold", type=int, default=None, help="run one fold (a quick look)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--min-flag-precision", type=float, default=0.92, help="on the fitting folds")
    parser.add_argument("--verifier-epochs", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "rag-bench-support")
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)

    began = time.monotonic()
    claims = load_claims(args.claims or args.data / "claims_train.jsonl")
    corpus = corpus_sentences(args.data / "corpus.jsonl")
    parts = folds(claims, args.folds, seed=args.seed)
    cosine = cosine_scorer() if args.scorer == "cosine" else None
    rows: list[dict[str, object]] = []
    for k, test in enumerate(parts):
        if args.only_fold is not None and k != args.only_fold:
            continue
        train = [c for i, part in enumerate(parts) if i != k for c in part]
        train_pairs = support_pairs(train, corpus, seed=args.seed)
        test_pairs = support_pairs(test, corpus, seed=args.seed + 1 + k)
        score = cosine or verifier_scorer(
            train_pairs, args.work_dir / f"verifier-fold{k}", args.verifier_epochs
        )
        fit_pairs, fit_labels = arrays(train_pairs, KINDS)
        weights, intercept = calibrate(score([(p.claim, p.sentence) for p in fit_pairs]), fit_labels)
        flag_pairs, flag_labels = arrays(train_pairs, FLAG_KINDS)
        fit_support = probability(score([(p.claim, p.sentence) for p in flag_pairs]), weights, intercept)
        threshold = choose_threshold(fit_support, flag_labels, args.min_flag_precision)
        test_support = probability(score([(p.claim, p.sentence) for p in test_pairs]), weights, intercept)
        kinds = np.array([p.kind for p in test_pairs])
        mask = np.isin(kinds, FLAG_KINDS)
        labels = np.array([p.label for p in test_pairs], dtype=np.float32)
        row: dict[str, object] = {
            "fold": k,
            "claims": len(test),
            "pairs": len(test_pairs),
            "weights": weights,
            "intercept": intercept,
            "threshold": threshold,
            **flag_measures(test_support[mask], labels[mask], threshold),
            **{f"flagged_{kind}": float((test_support[kinds == kind] < threshold).mean()) for kind in KINDS},
            "selection_top1": selection(test, corpus, calibrated(score, weights, intercept), args.seed + k),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    keys = [
        "flag_precision",
        "flag_recall",
        "supported_kept",
        *[f"flagged_{k}" for k in KINDS],
        "selection_top1",
    ]
    mean = {key: float(np.mean([float(r[key]) for r in rows])) for key in keys}  # type: ignore[arg-type]
    lines = [
        f"# Support model: {args.scorer}, {len(rows)} of {args.folds} folds by claim",
        "",
        "| fold | threshold | flag precision | flag recall | supported kept | neutral flagged "
        "| top-1 is rationale |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['fold']} | {float(r['threshold']):.3f} | {float(r['flag_precision']):.3f} | "  # type: ignore[arg-type]
            f"{float(r['flag_recall']):.3f} | {float(r['supported_kept']):.3f} | "  # type: ignore[arg-type]
            f"{float(r['flagged_neutral']):.3f} | {float(r['selection_top1']):.3f} |"  # type: ignore[arg-type]
        )
    lines.append(
        f"| mean | | {mean['flag_precision']:.3f} | {mean['flag_recall']:.3f} | "
        f"{mean['supported_kept']:.3f} | {mean['flagged_neutral']:.3f} | {mean['selection_top1']:.3f} |"
    )
    if args.scorer == "cosine" and args.only_fold is None:
        all_pairs = support_pairs(claims, corpus, seed=args.seed)
        fit_pairs, fit_labels = arrays(all_pairs, KINDS)
        weights, intercept = calibrate(cosine([(p.claim, p.sentence) for p in fit_pairs]), fit_labels)  # type: ignore[misc]
        flag_pairs, flag_labels = arrays(all_pairs, FLAG_KINDS)
        support = probability(cosine([(p.claim, p.sentence) for p in flag_pairs]), weights, intercept)  # type: ignore[misc]
        threshold = choose_threshold(support, flag_labels, args.min_flag_precision)
        lines += [
            "",
            f"On all claims: weights {', '.join(f'{w:.3f}' for w in weights)} (cosine, overlap), "
            f"intercept {intercept:.3f}, threshold {threshold:.3f}",
        ]
    lines.append(f"\n{time.monotonic() - began:.0f} s")
    text = "\n".join(lines)
    print(text)
    report.save(f"support-{args.scorer}", {"rows": rows, "mean": mean, "table": text}, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
