# syntax=docker/dockerfile:1.7
# MLflow tracking server and model registry: PostgreSQL backend store, S3 artifacts, and
# /metrics (--expose-prometheus needs prometheus-flask-exporter).
FROM python:3.11.13-slim-bookworm AS runtime
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN pip install "mlflow==3.17.2" "psycopg[binary]==3.2.10" "boto3==1.40.0" "prometheus-flask-exporter==0.23.2" \
    && groupadd --system --gid 10003 mlflow \
    && useradd --system --uid 10003 --gid mlflow --create-home --shell /usr/sbin/nologin mlflow \
    && mkdir -p /var/lib/mlflow/metrics && chown -R mlflow:mlflow /var/lib/mlflow
USER 10003:10003
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=3).status != 200)"]
ENTRYPOINT ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000", "--expose-prometheus", "/var/lib/mlflow/metrics"]
