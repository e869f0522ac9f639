"""Generated gRPC code for the ``rag.v1`` API (``protos/rag/v1/*.proto``).

Everything under ``rag/`` here is written by ``python -m rag.proto.generate`` (``make proto``)
and committed; never edit it by hand. Import messages as ``from rag.proto.rag.v1 import
search_pb2``.

It imports protobuf and grpc only.
"""
