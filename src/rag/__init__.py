"""RAG System: retrieval-augmented generation with Airflow batch and gRPC serving."""

__version__ = "0.1.0"
