"""Ingestion: one implementation for the gRPC upload path and the Airflow DAG.

``intake`` records bytes as a ``received`` document (blob in object storage, row in
PostgreSQL); ``trigger`` starts the ingestion DAG for an upload; ``pipeline`` takes a received
document through parse, chunk, embed and index, or quarantines it with a reason; ``assembly``
wires the pipeline from a process's connections and runs one batch through it.

It may import the core, the adapters, :mod:`rag.parsing` and :mod:`rag.settings` (and
:mod:`rag.models.artifacts`, to name the packaged embedder's version on a fresh database); the
upload servicer and the DAGs call it, it never imports them.
"""
