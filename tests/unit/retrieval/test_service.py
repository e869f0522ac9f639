"""RetrievalService over in-memory ports: hybrid fusion of dense and lexical results, filters,
reranking, tenant isolation of results and of cache keys, and what the cache saves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pytest
from numpy.typing import NDArray

from rag.core.errors import FailedPrecondition
from rag.core.ranking import HYBRID_RRF_K
from rag.core.search import SearchMode, SearchRequest, SearchResult
from rag.retrieval.service import Caller, RetrievalService
from tests.unit.fakes import EPOCH, FakeCache, FakeModels, FakeQueryLog, FakeSearchIndex, FakeVersions


def unit(*values: float) -> NDArray[np.float32]:
    vector = np.zeros(8, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


@dataclass
class Search:
    index: FakeSearchIndex = field(default_factory=FakeSearchIndex)
    models: FakeModels = field(default_factory=FakeModels)
    cache: FakeCache = field(default_factory=FakeCache)
    versions: FakeVersions = field(default_factory=FakeVersions)
    log: FakeQueryLog = field(default_factory=FakeQueryLog)
    rerank_depth: int = 30
    rerank_by_default: bool = True

    @property
    def service(self) -> RetrievalService:
        return RetrievalService(
            triton=self.models,
            cache=self.cache,
            index=self.index,
            versions=self.versions,
            history=self.log,
            rerank_depth=self.rerank_depth,
            rerank_by_default=self.rerank_by_default,
        )

    def __call__(
        self, query: str, *, tenant: str = "acme", mode: SearchMode = SearchMode.HYBRID, **fields: object
    ) -> SearchResult:
        request = SearchRequest.validated(query=query, mode=mode, **fields)  # type: ignore[arg-type]
        return asyncio.run(self.service.search(Caller(tenant, "ann", "req-1"), request))


QUERY = "solar panels"
A, B, C = "photovoltaic modules on a roof", "solar panels and their installers", "solar energy at home"


@pytest.fixture
def search() -> Search:
    """Three chunks the two retrievers rank differently: A is nearest to the query's vector but
    holds none of its words, B holds both words but points elsewhere, C is second in both."""
    s = Search()
    s.models.vectors[QUERY] = unit(1.0)
    s.index.add("acme", A, vector=unit(1.0))
    s.index.add("acme", B, vector=unit(0.0, 1.0))
    s.index.add("acme", C, vector=unit(0.8, 0.6))
    return s


def texts(result: SearchResult) -> list[str]:
    return [hit.text for hit in result.hits]


def test_dense_and_lexical_rankings_are_fused_by_reciprocal_rank(search: Search) -> None:
    dense = search(QUERY, mode=SearchMode.DENSE)
    assert texts(dense) == [A, C, B]
    assert [h.score for h in dense.hits] == pytest.approx([1.0, 0.8, 0.0], abs=1e-6)
    lexical = search(QUERY, mode=SearchMode.FULLTEXT)
    assert texts(lexical) == [B, C]
    assert [h.similarity for h in lexical.hits] == [None, None]  # no query vector in full-text mode
    hybrid = search(QUERY)
    assert texts(hybrid) == [B, C, A]
    k = HYBRID_RRF_K
    assert [h.score for h in hybrid.hits] == pytest.approx(
        [1 / (k + 1) + 1 / (k + 3), 2 / (k + 2), 1 / (k + 1)]
    )
    assert [h.similarity for h in hybrid.hits] == pytest.approx([0.0, 0.8, 1.0], abs=1e-6)


def test_top_k_cuts_the_fused_list(search: Search) -> None:
    assert texts(search(QUERY, top_k=1)) == [B]


def test_reranking_orders_the_candidates_by_the_cross_encoders_scores(search: Search) -> None:
    search.models.scores = {A: 9.0, C: 5.0}
    result = search(QUERY, rerank=True)
    assert texts(result) == [A, C, B]
    assert [h.score for h in result.hits] == [9.0, 5.0, 2.0]  # 2.0: shared words, the fake's default
    assert sorted(search.models.reranked[0]) == sorted(c.text for c in search.index.chunks)


def test_without_a_choice_a_search_reranks_exactly_when_a_reranker_serves(search: Search) -> None:
    search.models.scores = {A: 9.0, C: 5.0}
    assert texts(search(QUERY)) == [B, C, A]  # no reranker serves: plain hybrid
    assert search.models.reranked == []
    search.models.reranker_serves = True
    assert texts(search(QUERY)) == [A, C, B]
    assert texts(search(QUERY, rerank=False)) == [B, C, A]  # the caller's choice wins
    assert len(search.models.reranked) == 1
    search.rerank_by_default = False  # RERANK_BY_DEFAULT=false: only callers that ask rerank
    assert texts(search(QUERY)) == [B, C, A]
    assert texts(search(QUERY, rerank=True)) == [A, C, B]


def test_only_the_first_rerank_depth_candidates_are_reranked_the_rest_follow_in_fused_order(
    search: Search,
) -> None:
    search.rerank_depth = 2
    search.models.scores = {B: 1.0, C: 7.0, A: 9.0}
    result = search(QUERY, rerank=True)
    assert search.models.reranked == [[B, C]]  # the fused top 2
    assert texts(result) == [C, B, A]
    assert result.hits[0].score > result.hits[1].score > result.hits[2].score


def test_filters_confine_the_search(search: Search) -> None:
    german = search.index.add("acme", "Solarmodule solar panels", metadata={"lang": "de"})
    assert texts(search(QUERY, metadata={"lang": "de"})) == [german.text]
    assert texts(search(QUERY, document_ids=(str(german.document_id),))) == [german.text]
    late = search.index.add("acme", "solar panels later", created_at=EPOCH + timedelta(days=2))
    window = search(QUERY, created_after=EPOCH + timedelta(days=1), created_before=EPOCH + timedelta(days=3))
    assert [h.document_id for h in window.hits] == [str(late.document_id)]


def test_a_tenant_sees_only_its_own_chunks_also_through_the_cache(search: Search) -> None:
    other = search.index.add("globex", B, vector=unit(0.0, 1.0))
    mine = {str(c.document_id) for c in search.index.chunks if c.tenant == "acme"}
    first = search(QUERY)
    assert {h.document_id for h in first.hits} <= mine and len(first.hits) == 3
    theirs = search(QUERY, tenant="globex")  # the same request, after acme's result was cached
    assert not theirs.cache_hit
    assert [h.document_id for h in theirs.hits] == [str(other.document_id)]
    assert {tenant for _, tenant in search.index.calls[-3:]} == {"globex"}
    assert search(QUERY, tenant="globex").cache_hit and search(QUERY).cache_hit


def test_the_cache_answers_a_repeated_search_and_keeps_the_query_embedding(search: Search) -> None:
    first = search(QUERY)
    calls = len(search.index.calls)
    again = search(QUERY)
    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert again.hits == first.hits and len(search.index.calls) == calls  # the index was not asked
    other_k = search(QUERY, top_k=2)  # another request: searched again, its query vector reused
    assert not other_k.cache_hit and search.models.embedded == [QUERY]
    assert [(r.kind, r.query, r.cache_hit, r.result_count) for r in search.log.records] == [
        ("search", QUERY, False, 3),
        ("search", QUERY, True, 3),
        ("search", QUERY, False, 2),
    ]
    assert {(r.tenant, r.username, r.request_id, r.model_version) for r in search.log.records} == {
        ("acme", "ann", "req-1", "v1")
    }


def test_new_documents_or_a_new_cache_epoch_are_never_served_stale(search: Search) -> None:
    assert not search(QUERY).cache_hit and search(QUERY).cache_hit
    search.versions.generations["acme"] = 1  # the tenant's documents changed
    assert not search(QUERY).cache_hit
    search.versions.epoch = "after-a-restore"
    assert not search(QUERY).cache_hit
    assert search.models.embedded == [QUERY, QUERY]  # the epoch renews the cached embedding too


def test_an_empty_index_says_what_to_do() -> None:
    search = Search(versions=FakeVersions(model_version=None))
    with pytest.raises(FailedPrecondition, match="ingest documents first"):
        search(QUERY)


def test_the_postgresql_ports_need_a_pool_when_not_given() -> None:
    with pytest.raises(TypeError, match="give a pool"):
        RetrievalService(triton=FakeModels(), cache=FakeCache(), index=FakeSearchIndex())
