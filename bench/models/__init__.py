"""Model benchmarks: in-process floors (inprocess.py) and Triton vs in-process (python -m bench.models).

``python -m bench.models`` runs the embedder load of ``embedder.py`` and the generator streams of
``generator.py``.
"""
