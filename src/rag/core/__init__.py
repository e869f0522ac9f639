"""The core: RAG System's domain, pure Python.

Errors (the one taxonomy every edge maps), documents and their status machine, chunking,
ranking and fusion, search requests and results, prompts, citations, principals and roles,
authentication rules and login throttling, and the ports (``ports``): the Protocols the
services are typed by and the adapters implement. No I/O and no framework: it imports the standard
library, numpy and pydantic only (tests/unit/test_import_rules.py), so it runs and is tested
in-process, and every other room may import it.
"""
