"""Servicers: proto <-> domain translation only.

Each one subclasses the generated ``XServiceServicer``, reads the caller with
:func:`grpc_services.context.current_principal`, validates and converts the request, calls one
service (retrieval, generation, intake, model lifecycle, operations) and converts its answer;
it raises :mod:`rag.core.errors`, which the interceptors map to gRPC status codes once. It may
import the services, the adapters they are wired with, the core and the generated protos.
"""
