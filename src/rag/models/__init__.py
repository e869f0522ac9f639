"""Model runtimes: embedder, reranker and generator, in plain Python and torch.

Each runtime loads weights from a folder on disk (never from a hub) and is what the Triton
adapters in ``triton_models/<model>/1/model.py`` call: ``artifacts`` says where weights live and
which device runs them, ``tensors`` and ``triton_args`` read what Triton hands a model,
``triton_backend`` holds the plumbing the adapters share (it is handed Triton's utilities, never
imports them), ``tokens`` and ``text_stream`` count and decode tokens. Nothing here imports
Triton, MLflow, the database or :mod:`rag.modelops` (which packages, registers and promotes these
models), so the logic runs and is tested in-process. It may import the core only. Importing this package is
cheap: torch, sentence-transformers and transformers are imported by the submodules that need
them.
"""
