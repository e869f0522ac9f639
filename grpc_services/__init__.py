"""The gRPC edge of RAG System: servicers (proto <-> domain translation only), interceptors
(request id, telemetry, error mapping, auth, rate limit) and the server recipe (``server.py``).

Run it with ``python -m grpc_services``; settings come from the environment.

As the edge it may import every room of rag except the local stack.
"""
