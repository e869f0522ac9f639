"""Ingestion: one implementation for the gRPC upload path and the Airflow DAG.

``intake`` records bytes as a ``received`` document (blob in object storage, row in
PostgreSQL); ``pipeline`` takes a received document through parse, chunk, embed and index, or
quarantines it with a reason.

It may import the core, :mod:`rag.parsing` and :mod:`rag.settings`. Intake, the pipeline and
the sources are handed their document store, object storage and embedder, typed by
:mod:`rag.core.ports`, and import no adapter; re-embedding still uses the PostgreSQL adapters.
The upload servicer and the DAGs call it, it never imports them.
"""
