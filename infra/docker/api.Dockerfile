# syntax=docker/dockerfile:1.7
# The gRPC API (python -m grpc_services). Build from the repository root:
#   docker build -f infra/docker/api.Dockerfile --target runtime -t rag-system/api .
#   docker build -f infra/docker/api.Dockerfile --target test -t rag-system/api:test . \
#     && docker run --rm rag-system/api:test                      # unit tests, no servers
#
# Stages: base (runtime dependencies in /opt/venv), test (base + dev tools + tests),
# runtime (slim image with only /opt/venv and a non-root user).
#
# torch: the API process does not run models (Triton does) but imports the shared package,
# which pins torch==2.13.0. It is installed first from PyTorch's CPU index: PyPI's default
# Linux wheel pulls ~3 GB of CUDA libraries. The constraint file then keeps every later
# install from replacing it with the CUDA build.

FROM python:3.11.13-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app
RUN python -m venv /opt/venv \
    && echo "torch==2.13.0" > /opt/constraints.txt \
    && pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY src/ src/
COPY grpc_services/ grpc_services/
RUN pip install --constraint /opt/constraints.txt .

FROM base AS test
COPY protos/ protos/
COPY tests/ tests/
COPY dags/ dags/
COPY plugins/ plugins/
COPY triton_models/ triton_models/
RUN pip install --constraint /opt/constraints.txt ".[dev]"
CMD ["python", "-m", "pytest", "tests/unit", "-q"]

FROM python:3.11.13-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="rag-system-api" \
      org.opencontainers.image.description="RAG System gRPC API (rag.v1)"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    HF_CACHE_DIR=/app/model_cache
RUN groupadd --system --gid 10001 rag \
    && useradd --system --uid 10001 --gid rag --home-dir /app --shell /usr/sbin/nologin rag \
    && mkdir -p /app/model_cache \
    && chown -R rag:rag /app
COPY --from=base /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 50051 9464
# grpc.health.v1 Check: healthy only when SERVING (database, object storage, Triton models ready).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "grpc_services.healthcheck"]
ENTRYPOINT ["python", "-m", "grpc_services"]
