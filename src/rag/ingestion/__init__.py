"""Ingestion: one implementation for the gRPC upload path and the Airflow DAG.

``intake`` records bytes as a ``received`` document (blob in object storage, row in
PostgreSQL); ``pipeline`` takes a received document through parse, chunk, embed and index, or
quarantines it with a reason.
"""
