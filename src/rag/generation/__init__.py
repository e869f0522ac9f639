"""Grounded generation: retrieve, build the prompt, stream tokens from the generator, cite sources.

:class:`~rag.generation.service.GenerationService` is what GenerationService's RPCs call. Its
generator is a port (:mod:`rag.core.ports`); it may import the core and :mod:`rag.retrieval`,
no adapter, never the gRPC edge.
"""
