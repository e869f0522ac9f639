"""The embedded local stack: every component of RAG System as a real local process.

PostgreSQL + pgvector, Redis, SeaweedFS (S3), MLflow, Triton and Airflow run on 127.0.0.1 with
their state, logs and PID files under one state directory (default ``.rag/``). The same code
starts the developer stack (``make up``) and the test session's stack (tests/fixtures).

Development and tests only: it may import the adapters, the core, the migrations and the
models; only :mod:`rag.cli`, ``bench`` and ``tests`` import it, never the product's services.
"""
