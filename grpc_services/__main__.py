"""``python -m grpc_services``: run the gRPC server until SIGTERM."""

from __future__ import annotations

import sys

from grpc_services.server import main

sys.exit(main())
