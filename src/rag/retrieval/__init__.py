"""Online retrieval: hybrid search (dense + BM25, RRF), rerank, caching, query history."""
