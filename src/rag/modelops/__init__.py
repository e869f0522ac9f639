"""Model operations: a model's life from weights on disk to the version Triton serves.

Packaging a model for MLflow (``packaging``, the ``pyfunc`` wrappers and their models-from-code
entries), registering, promoting and rolling back versions (``lifecycle``), the Triton model
repository on disk and the ``config.pbtxt`` files rendered from their templates
(``triton_repository``, ``triton_config``), and the MLflow webhook receiver that promotes the
version given the alias ``champion`` (``webhook``). It may import the core, the adapters (MLflow,
PostgreSQL deployment records, Triton) and the runtimes of :mod:`rag.models` (to load weights
when packaging); the runtimes never import it, so ``triton_models/*/1/model.py`` stay free of
MLflow and of the database.
"""
