"""Grounded answers: do the citations quote the gold rationale, and what does grounding cost?

Each claim of a SciFact-format claims file is asked as the question through gRPC
``GenerateStream`` (against the corpus's ingested tenant) once per row:

* ``generated``: the default request (generated answer, unsupported sentences flagged);
* ``strict``: ``strict=true`` (unsupported sentences dropped, quotes when none is left);
* ``quotes-only``: ``quotes_only=true`` (no generation: top source sentences quoted, the floor).

Metrics per row, with the counts behind them:

* citation precision: over all citations of all answers to claims with a gold rationale, the
  fraction that are gold. A citation is gold when its document maps to an evidence document of
  the claim (``doc_id``) AND its quote, whitespace-normalised, equals one of that evidence's
  rationale sentences or, when both are at least 20 characters, one contains the other (the
  service's sentence splitter and SciFact's differ). Split by the rationale's label (SUPPORT,
  CONTRADICT) in the JSON;
* claim evidence recall: the fraction of claims with a gold rationale that got at least one gold
  citation (by label: over the claims that have a rationale of that label);
* answers without a citation (count and fraction, over every answer);
* mean ``grounding.grounded_fraction`` and the fraction of answers that are extractive;
* seconds per answer (wall clock from the request to the stream's end): p50 and mean.

Claims without a gold rationale are skipped unless ``--all-claims`` (then they count in the
"no citation", grounding and timing columns only).

    python -m bench.grounding                                # SciFact train claims, every row
    python -m bench.grounding --limit 50 --seed 7            # 50 claims drawn by a seeded shuffle
    python -m bench.grounding --rows strict,quotes-only --top-k 5 --max-tokens 96
    python -m bench.grounding --claims /path/claims.jsonl --data /path/to/beir/scifact
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import beir, report
from bench.quality import ensure_ingested
from bench.target import connect, stack_parser
from rag.client import RagClient
from rag.proto.rag.v1 import generation_pb2
from rag.training.claims import Claim, parse_claims


@dataclass(frozen=True)
class Options:
    """A row's grounding options on ``GenerateStreamRequest``."""

    strict: bool = False
    quotes_only: bool = False


ROWS: dict[str, Options] = {
    "generated": Options(),
    "strict": Options(strict=True),
    "quotes-only": Options(quotes_only=True),
}
LABELS = ("SUPPORT", "CONTRADICT")
# Both sides at least this long before containment counts as a match.
MIN_CONTAINED = 20


@dataclass(frozen=True)
class Cited:
    document: str  # the BEIR id the cited document was ingested from (its UUID when unknown)
    quote: str


@dataclass(frozen=True)
class Answer:
    claim: Claim
    text: str
    citations: tuple[Cited, ...]
    grounded_fraction: float | None  # None: the stream sent no grounding
    extractive: bool
    seconds: float


def pick(claims: Sequence[Claim], limit: int | None, seed: int) -> list[Claim]:
    """All claims in file order, or ``limit`` of them drawn by a shuffle seeded with ``seed``."""
    if limit is None or limit >= len(claims):
        return list(claims)
    chosen = list(claims)
    random.Random(seed).shuffle(chosen)
    return chosen[:limit]


def normalise(text: str) -> str:
    return " ".join(text.split())


def same_sentence(quote: str, gold: str) -> bool:
    a, b = normalise(quote), normalise(gold)
    if not a or not b:
        return False
    return a == b or (min(len(a), len(b)) >= MIN_CONTAINED and (a in b or b in a))


def gold_labels(claim: Claim, cited: Cited) -> set[str]:
    """The labels of the claim's rationales the citation quotes (empty: not gold)."""
    return {
        r.label
        for r in claim.evidence
        if r.doc_id == cited.document and any(same_sentence(cited.quote, s) for s in r.sentences)
    }


def fraction(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def row_metrics(answers: Sequence[Answer]) -> dict[str, Any]:
    """The row's metrics with their counts (see the module's docstring)."""
    judged = [a for a in answers if a.claim.evidence]
    cites = [(a.claim, c) for a in judged for c in a.citations]
    matches = [gold_labels(claim, c) for claim, c in cites]
    gold = sum(1 for m in matches if m)
    by_label: dict[str, Any] = {}
    for label in LABELS:
        with_label = [a for a in judged if any(r.label == label for r in a.claim.evidence)]
        hit = [a for a in with_label if any(label in gold_labels(a.claim, c) for c in a.citations)]
        gold_label = sum(1 for m in matches if label in m)
        by_label[label] = {
            "gold_citations": gold_label,
            "citation_precision": fraction(gold_label, len(cites)),
            "claims": len(with_label),
            "claims_with_gold_citation": len(hit),
            "claim_evidence_recall": fraction(len(hit), len(with_label)),
        }
    recalled = sum(1 for a in judged if any(gold_labels(a.claim, c) for c in a.citations))
    uncited = sum(1 for a in answers if not a.citations)
    grounded = [a.grounded_fraction for a in answers if a.grounded_fraction is not None]
    extractive = sum(1 for a in answers if a.grounded_fraction is not None and a.extractive)
    seconds = [a.seconds for a in answers]
    return {
        "answers": len(answers),
        "citations": len(cites),
        "gold_citations": gold,
        "citation_precision": fraction(gold, len(cites)),
        "claims_with_rationale": len(judged),
        "claims_with_gold_citation": recalled,
        "claim_evidence_recall": fraction(recalled, len(judged)),
        "answers_without_citation": uncited,
        "no_citation_fraction": fraction(uncited, len(answers)),
        "answers_with_grounding": len(grounded),
        "mean_grounded_fraction": statistics.fmean(grounded) if grounded else None,
        "extractive_answers": extractive,
        "extractive_fraction": fraction(extractive, len(grounded)),
        "seconds_p50": statistics.median(seconds) if seconds else None,
        "seconds_mean": statistics.fmean(seconds) if seconds else None,
        "by_label": by_label,
    }


def counted(value: float | None, part: int, whole: int) -> str:
    return "-" if value is None else f"{value:.3f} ({part}/{whole})"


def table_row(name: str, m: Mapping[str, Any]) -> list[Any]:
    return [
        name,
        m["answers"],
        counted(m["citation_precision"], m["gold_citations"], m["citations"]),
        counted(m["claim_evidence_recall"], m["claims_with_gold_citation"], m["claims_with_rationale"]),
        counted(m["no_citation_fraction"], m["answers_without_citation"], m["answers"]),
        m["mean_grounded_fraction"],
        counted(m["extractive_fraction"], m["extractive_answers"], m["answers_with_grounding"]),
        m["seconds_p50"],
        m["seconds_mean"],
    ]


def parse_rows(text: str) -> list[str]:
    rows = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        raise SystemExit(f"--rows: unknown {unknown or 'empty'}; choose from {', '.join(ROWS)}")
    return rows


def ask(
    client: RagClient,
    claim: Claim,
    options: Options,
    doc_of: Mapping[str, str],
    *,
    top_k: int,
    max_tokens: int,
) -> Answer:
    for attempt in range(5):
        tokens: list[str] = []
        citations: list[Cited] = []
        grounding: generation_pb2.Grounding | None = None
        began = time.perf_counter()
        try:
            events = client.ask(
                claim.claim,
                top_k=top_k,
                max_tokens=max_tokens,
                strict=options.strict,
                quotes_only=options.quotes_only,
            )
            for event in events:
                kind = event.WhichOneof("event")
                if kind == "token":
                    tokens.append(event.token)
                elif kind == "citations":
                    citations = [
                        Cited(doc_of.get(c.document_id, c.document_id), c.quote)
                        for c in event.citations.citations
                    ]
                elif kind == "grounding":
                    grounding = event.grounding
            seconds = time.perf_counter() - began
            break
        except grpc.RpcError as exc:
            if attempt == 4:
                raise
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:  # the access token expired mid-run
                client.refresh()
            elif exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                time.sleep(0.5 * (attempt + 1))
            else:
                raise
    return Answer(
        claim,
        grounding.answer if grounding is not None else "".join(tokens),
        tuple(citations),
        grounding.grounded_fraction if grounding is not None else None,
        grounding is not None and grounding.extractive,
        seconds,
    )


def main(argv: list[str] | None = None) -> int:
    parser = stack_parser("bench.grounding", __doc__, data_help="BEIR folder: the corpus the claims cite")
    parser.add_argument("--claims", type=Path, default=None, help="default: claims_train.jsonl in --data")
    parser.add_argument("--all-claims", action="store_true", help="also claims without a gold rationale")
    parser.add_argument("--limit", type=int, default=None, help="N claims drawn by a seeded shuffle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    rows = parse_rows(args.rows)
    claims_path = args.claims or args.data / "claims_train.jsonl"
    with claims_path.open(encoding="utf-8") as handle:
        claims = pick(parse_claims(handle, all_claims=args.all_claims), args.limit, args.seed)
    if not claims:
        raise SystemExit(f"{claims_path}: no claims to ask")
    dataset = beir.load(args.data)
    target = connect(args.state_dir, start=args.start)
    tenant, doc_of = ensure_ingested(target.settings, dataset)
    metrics: dict[str, dict[str, Any]] = {}
    samples: list[dict[str, Any]] = []
    with target.client(tenant, timeout_s=300.0) as client:
        for row in rows:
            answers = []
            for n, claim in enumerate(claims, start=1):
                answer = ask(client, claim, ROWS[row], doc_of, top_k=args.top_k, max_tokens=args.max_tokens)
                answers.append(answer)
                gold = sum(1 for c in answer.citations if gold_labels(claim, c))
                samples.append(
                    {
                        "row": row,
                        "claim_id": claim.id,
                        "seconds": answer.seconds,
                        "citations": len(answer.citations),
                        "gold_citations": gold,
                        "grounded_fraction": answer.grounded_fraction,
                        "extractive": answer.extractive,
                    }
                )
                if n % 25 == 0:
                    print(f"  {row}: {n}/{len(claims)} claims", flush=True)
            metrics[row] = row_metrics(answers)
            print(f"  {row}: {json.dumps(metrics[row], default=str)}", flush=True)
    title = (
        f"Grounding: {len(claims)} claims of {claims_path.name}, top_k {args.top_k}, up to"
        f" {args.max_tokens} tokens; {report.load_now()}"
    )
    header = [
        "row",
        "answers",
        "citation precision",
        "claim recall",
        "no citation",
        "grounded",
        "extractive",
        "s p50",
        "s mean",
    ]
    print(report.table(title, header, [table_row(r, metrics[r]) for r in rows]))
    path = report.save(
        "grounding",
        {
            "claims_file": str(claims_path),
            "claims": len(claims),
            "claims_with_rationale": sum(1 for c in claims if c.evidence),
            "all_claims": args.all_claims,
            "limit": args.limit,
            "seed": args.seed,
            "top_k": args.top_k,
            "max_tokens": args.max_tokens,
            "tenant": tenant,
            "min_contained_chars": MIN_CONTAINED,
            "rows": metrics,
            "samples": samples,
        },
        args.results,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
