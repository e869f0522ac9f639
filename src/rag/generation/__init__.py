"""Grounded generation: retrieve, build the prompt, stream tokens from Triton, cite sources.

:class:`~rag.generation.service.GenerationService` is what GenerationService's RPCs call. It
may import the core, the adapters (Triton, the query log) and :mod:`rag.retrieval`; never the
gRPC edge.
"""
