"""TREC run files (``qid Q0 docid rank score tag``) of the benches; the metrics themselves are
the product's (:mod:`rag.training.metrics`), the ones its trainings gate on."""

from __future__ import annotations

from pathlib import Path

from rag.training.metrics import Run


def write_trec_run(path: Path, run: Run, tag: str) -> None:
    """``qid Q0 docid rank score tag`` lines, ranks from 1, in the run's order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for query, ranked in run.items():
            for rank, (doc, score) in enumerate(ranked, start=1):
                out.write(f"{query} Q0 {doc} {rank} {score:.6f} {tag}\n")


def read_trec_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    run: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        query, _, doc, _, score, _ = line.split()
        run.setdefault(query, []).append((doc, float(score)))
    return run
