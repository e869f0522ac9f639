# syntax=docker/dockerfile:1.7
# Airflow 3 with RAG System's DAGs (dags/), hooks (plugins/) and the shared package.
#   docker build -f infra/docker/airflow.Dockerfile --target runtime -t rag-system/airflow .
#   docker build -f infra/docker/airflow.Dockerfile --target test -t rag-system/airflow:test . \
#     && docker run --rm rag-system/airflow:test                  # every DAG imports cleanly
#
# The official image already runs as the non-root user `airflow` (uid 50000). torch is the
# CPU wheel (see api.Dockerfile): ingestion tasks count tokens with the embedder's tokenizer
# and call Triton for the embeddings.

FROM apache/airflow:3.3.2-python3.11 AS base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins
USER 50000
WORKDIR /opt/airflow
RUN echo "torch==2.13.0" > /tmp/constraints.txt \
    && pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY --chown=airflow:0 pyproject.toml README.md /opt/rag/
COPY --chown=airflow:0 src/ /opt/rag/src/
COPY --chown=airflow:0 grpc_services/ /opt/rag/grpc_services/
RUN pip install --constraint /tmp/constraints.txt "apache-airflow==3.3.2" /opt/rag
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/

FROM base AS test
# DAG integrity: every file parses into exactly the DAGs it declares, without import errors.
CMD ["python", "-c", "from airflow.models.dagbag import DagBag; b = DagBag(include_examples=False); assert not b.import_errors, b.import_errors; print(sorted(b.dag_ids))"]

FROM base AS runtime
USER 50000
EXPOSE 8080
# The api-server's health endpoint; compose overrides it for the scheduler and the workers.
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=5 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/api/v2/monitor/health', timeout=5).status != 200)"]
CMD ["api-server"]
