"""Servicers: proto <-> domain translation only. Each one subclasses the generated
``XServiceServicer``, reads the caller with :func:`grpc_services.context.current_principal`
and raises :mod:`rag.core.errors`; the interceptors do the rest."""
