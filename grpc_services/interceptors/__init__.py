"""Server interceptors, in the order ``build_server`` installs them (outermost first):
request id, telemetry, error mapping, auth, rate limit, admission, validation.

Each is one cross-cutting concern applied to every RPC, so servicers never repeat it. They may
import the core, the adapters they need (token codec) and :mod:`grpc_services` helpers.
"""
