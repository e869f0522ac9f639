"""A BEIR-format dataset: corpus.jsonl, queries.jsonl, qrels/{test,dev,train}.tsv."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("test", "dev", "train")
DATA_ENV = "RAG_BENCH_DATA"
_REPO = Path(__file__).resolve().parents[1]
# SciFact ships in the team's shared folder: inside the checkout or beside it.
_SCIFACT = (_REPO / "shared" / "data" / "scifact", _REPO.parent / "shared" / "data" / "scifact")


def default_data() -> Path:
    """$RAG_BENCH_DATA, else SciFact from ``shared/`` inside or beside the checkout."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return next((p for p in _SCIFACT if (p / "corpus.jsonl").is_file()), _SCIFACT[-1])


@dataclass(frozen=True)
class BeirDataset:
    name: str
    path: Path
    split: str
    corpus: dict[str, tuple[str, str]]  # document id -> (title, text)
    queries: dict[str, str]  # only the queries that have judgements in the split
    qrels: dict[str, dict[str, int]]
    digest: str  # sha256 of corpus.jsonl: the same corpus is ingested once

    def document_text(self, doc_id: str) -> str:
        """What is ingested: "title\\n\\nabstract" (the title alone or the text alone if one is empty)."""
        title, text = self.corpus[doc_id]
        return "\n\n".join(part for part in (title.strip(), text.strip()) if part)


def load(path: Path, split: str | None = None, *, max_queries: int | None = None) -> BeirDataset:
    """Load a BEIR folder; ``split`` None takes the first of test, dev, train that exists."""
    path = path.resolve()
    if not (path / "corpus.jsonl").is_file():
        raise SystemExit(f"{path} is not a BEIR folder: no corpus.jsonl; pass --data DIR or set {DATA_ENV}")
    qrels_dir = path / "qrels"
    chosen = split or next((s for s in SPLITS if (qrels_dir / f"{s}.tsv").is_file()), None)
    if chosen is None or not (qrels_dir / f"{chosen}.tsv").is_file():
        found = sorted(p.name for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
        raise SystemExit(f"{qrels_dir} has no {split or 'test/dev/train'}.tsv (found: {found or 'none'})")
    digest = hashlib.sha256()
    corpus: dict[str, tuple[str, str]] = {}
    with (path / "corpus.jsonl").open("rb") as handle:
        for raw in handle:
            digest.update(raw)
            if raw.strip():
                row = json.loads(raw)
                corpus[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    qrels: dict[str, dict[str, int]] = {}
    with (qrels_dir / f"{chosen}.tsv").open(newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] in {"query-id", "query_id"}:
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    every = all_queries(path)
    ids = sorted((q for q in qrels if q in every), key=_natural)
    if max_queries is not None:
        ids = ids[:max_queries]
    return BeirDataset(
        name=path.name,
        path=path,
        split=chosen,
        corpus=corpus,
        queries={q: every[q] for q in ids},
        qrels={q: qrels[q] for q in ids},
        digest=digest.hexdigest(),
    )


def _natural(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def all_queries(path: Path) -> dict[str, str]:
    """Every query of the folder, judged or not (texts for load tests)."""
    queries: dict[str, str] = {}
    with (path / "queries.jsonl").open() as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
    return queries
