"""Online retrieval: hybrid search (dense + BM25 fused by RRF), rerank, caching, query log.

:class:`~rag.retrieval.service.RetrievalService` is what SearchService and generation call. It
may import the core and the adapters (PostgreSQL search, Triton, the tiered cache, search
versions, query history); never the gRPC edge or the other services.
"""
