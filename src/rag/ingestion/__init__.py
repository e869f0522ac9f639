"""Ingestion: one implementation for the gRPC upload path and the Airflow DAG.

``intake`` records bytes as a ``received`` document (blob in object storage, row in
PostgreSQL); ``trigger`` starts the ingestion DAG for an upload; ``pipeline`` takes a received
document through parse, chunk, embed and index, or quarantines it with a reason; ``assembly``
wires the pipeline from a process's connections and runs one batch through it.

It may import the core, :mod:`rag.parsing` and :mod:`rag.settings`. Intake, the pipeline and
the sources are handed their document store, object storage and embedder, typed by
:mod:`rag.core.ports`, and import no adapter. The trigger (Airflow), the assembly (which wires
the pipeline from a process's connections, and names the packaged embedder's version through
:mod:`rag.models.artifacts` on a fresh database) and re-embedding use the adapters. The upload
servicer and the DAGs call it, it never imports them.
"""
