"""Model runtimes: embedder, reranker and generator, in plain Python and torch.

Each runtime loads weights from a folder on disk (never from a hub) and is what the Triton
adapters in ``triton_models/<model>/1/model.py`` call. Nothing here imports Triton, so the
logic runs and is tested in-process. Importing this package is cheap: torch,
sentence-transformers and transformers are imported by the submodules that need them.
"""
