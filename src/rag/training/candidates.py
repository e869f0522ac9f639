"""What a labelled query retrieves, and the training pairs mined from it.

Both trainings start here. Each labelled query is searched with the product's own hybrid search
(the ``CandidateSearch`` port: in the DAG, the retrieval service over the tenant's index), so
the models learn to reorder exactly the candidates they will reorder when serving. Labels are
per document and the search returns chunks: a chunk is a positive when its document is graded
above 0, and a hard negative when its document is not labelled relevant (qrels are incomplete,
so an unlabelled document in the top ranks is a negative here, as in every BEIR training).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from rag.training.metrics import Run, documents_from_chunks


@dataclass(frozen=True)
class Candidate:
    chunk_id: int
    document_id: str
    text: str


class Labelled(Protocol):
    """A labelled query (``rag.core.labels.LabelledQuery``): its key, text and document grades."""

    @property
    def key(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def grades(self) -> Mapping[str, int]: ...


class CandidateSearch(Protocol):
    def __call__(self, query: str, depth: int) -> Sequence[Candidate]:
        """The first ``depth`` chunks of the hybrid search for ``query``, best first."""
        ...


@dataclass(frozen=True)
class RankedCandidates:
    key: str
    query: str
    grades: Mapping[str, int]
    candidates: tuple[Candidate, ...]  # the hybrid order, best first

    def relevant(self, candidate: Candidate) -> bool:
        return self.grades.get(candidate.document_id, 0) > 0


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    label: float  # 1.0 relevant, 0.0 not


def mine(
    queries: Iterable[Labelled],
    search: CandidateSearch,
    *,
    depth: int,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> list[RankedCandidates]:
    """Each query's first ``depth`` hybrid candidates, in the order given."""
    labelled = list(queries)

    def one(query: Labelled) -> RankedCandidates:
        found = tuple(search(query.text, depth))
        return RankedCandidates(query.key, query.text, dict(query.grades), found)

    out: list[RankedCandidates] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for n, ranked in enumerate(pool.map(one, labelled), start=1):
            out.append(ranked)
            if progress is not None and (n % 50 == 0 or n == len(labelled)):
                progress(n, len(labelled))
    return out


def pairs(lists: Iterable[RankedCandidates], *, negatives: int, negative_depth: int, seed: int) -> list[Pair]:
    """Every relevant candidate as a positive pair, and per query ``negatives`` chunks drawn at
    random from the irrelevant ones among its first ``negative_depth`` candidates (hard
    negatives: what the search ranked high and the labels say is wrong). Queries with no
    relevant candidate give nothing (there is nothing to learn the order from)."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    out: list[Pair] = []
    for ranked in lists:
        positives = [c for c in ranked.candidates if ranked.relevant(c)]
        if not positives:
            continue
        pool = [c for c in ranked.candidates[:negative_depth] if not ranked.relevant(c)]
        drawn = rng.sample(pool, min(negatives, len(pool)))
        out.extend(Pair(ranked.query, c.text, 1.0) for c in positives)
        out.extend(Pair(ranked.query, c.text, 0.0) for c in drawn)
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class Triplet:
    query: str
    positive: str
    negative: str


def triplets(
    lists: Iterable[RankedCandidates], *, negatives: int, negative_depth: int, seed: int
) -> list[Triplet]:
    """For the embedder: each relevant document's best-ranked chunk as a positive, paired with
    ``negatives`` hard negatives drawn at random from the query's first ``negative_depth``
    irrelevant candidates (one triplet per positive and negative). Queries with no relevant
    candidate, or no irrelevant one, give nothing."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not a secret)
    out: list[Triplet] = []
    for ranked in lists:
        best: dict[str, Candidate] = {}
        for c in ranked.candidates:
            if ranked.relevant(c):
                best.setdefault(c.document_id, c)
        pool = [c for c in ranked.candidates[:negative_depth] if not ranked.relevant(c)]
        if not best or not pool:
            continue
        for positive in best.values():
            for negative in rng.sample(pool, min(negatives, len(pool))):
                out.append(Triplet(ranked.query, positive.text, negative.text))
    rng.shuffle(out)
    return out


def hybrid_run(lists: Iterable[RankedCandidates]) -> Run:
    """The search's own document ranking of each query (a document at its best chunk's place)."""
    return {r.key: documents_from_chunks((c.document_id, 0.0) for c in r.candidates) for r in lists}


def qrels(lists: Iterable[RankedCandidates]) -> dict[str, dict[str, int]]:
    return {r.key: dict(r.grades) for r in lists}
