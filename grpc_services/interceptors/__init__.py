"""Server interceptors, in the order ``build_server`` installs them (outermost first):
request id, telemetry, error mapping, auth, rate limit, admission, validation."""
