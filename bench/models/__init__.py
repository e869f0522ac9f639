"""Model benchmarks: in-process floors (inprocess.py) and Triton vs in-process (python -m bench.models)."""
