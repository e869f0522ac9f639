"""Adapters: one module per outside system, the only code that talks to a driver.

Triton (``triton``), MLflow (``mlflow_registry``), S3 (``objectstore``), Redis and the disk query
cache (``cache``), Airflow's REST API (``airflow``), JWT (``tokens``), argon2 (``passwords``) and
PostgreSQL (the ``postgres`` package). Each translates its driver's errors into
:mod:`rag.core.errors` at this boundary (Unavailable, DeadlineExceeded, InvalidInput, ...) and
puts a deadline on every outbound call. Adapters may import the core, :mod:`rag.settings` and
their drivers; never a service (ingestion, retrieval, generation, operations), the entry points
or the local stack.
"""
