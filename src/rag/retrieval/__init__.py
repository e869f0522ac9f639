"""Online retrieval: hybrid search (dense + BM25 fused by RRF), rerank, caching, query log.

:class:`~rag.retrieval.service.RetrievalService` is what SearchService and generation call. Its
search index, query models, result cache, index versions and query log are ports
(:mod:`rag.core.ports`); it imports the core, and the PostgreSQL adapters only to build the
ports it is not given from ``pool=``; never the gRPC edge or the other services.
"""
