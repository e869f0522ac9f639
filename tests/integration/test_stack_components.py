"""Each component of the local stack is the real thing, reached with its real client."""

from __future__ import annotations

import io
import uuid

import boto3
import httpx
import numpy as np
import psycopg
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import ClientError
from pgvector.psycopg import register_vector

from rag.settings import Settings
from rag.stack.stack import LocalStack

pytestmark = pytest.mark.integration


def test_every_component_reports_healthy(stack: LocalStack) -> None:
    rows = stack.status()
    assert {row.name for row in rows} == {
        "postgres",
        "redis",
        "objectstore",
        "mlflow",
        "triton",
        "airflow",
        "api",
    }
    assert all(row.healthy for row in rows), [(r.name, r.detail) for r in rows if not r.healthy]


def test_pgvector_hnsw_returns_the_planted_nearest_neighbour(db: psycopg.Connection) -> None:
    register_vector(db)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(400, 384)).astype(np.float32)
    query = rng.normal(size=384).astype(np.float32)
    planted = 123
    vectors[planted] = query + rng.normal(scale=0.01, size=384).astype(np.float32)
    db.execute("CREATE TEMP TABLE probe (id int PRIMARY KEY, v vector(384))")
    with db.cursor().copy("COPY probe (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "vector"])
        for i, vector in enumerate(vectors):
            copy.write_row((i, vector))
    db.execute("CREATE INDEX ON probe USING hnsw (v vector_cosine_ops)")
    db.execute("ANALYZE probe")
    db.execute("SET enable_seqscan = off")
    plan = "\n".join(
        r[0] for r in db.execute("EXPLAIN SELECT id FROM probe ORDER BY v <=> %s LIMIT 5", (query,))
    )
    assert "hnsw" in plan.lower() or "Index Scan" in plan
    rows = db.execute("SELECT id FROM probe ORDER BY v <=> %s LIMIT 5", (query,)).fetchall()
    assert rows[0][0] == planted


def test_chunks_table_has_hnsw_and_fulltext_indexes(db: psycopg.Connection) -> None:
    indexes: dict[str, str] = dict(
        db.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks'").fetchall()
    )
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["chunks_embedding_hnsw_idx"]
    assert "USING gin (tsv)" in indexes["chunks_tsv_idx"]
    # BM25 keeps the tenant's chunks of the active version through this one (migration 0005).
    assert "(tenant, embedding_model_version, id)" in indexes["chunks_tenant_version_id_idx"]


def test_redis_round_trip(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    key = f"test:{uuid.uuid4()}"
    assert client.set(key, b"value", ex=30)
    assert client.get(key) == b"value"
    assert 0 < client.ttl(key) <= 30
    anonymous = redis.Redis(host="127.0.0.1", port=client.connection_pool.connection_kwargs["port"])
    with pytest.raises(redis.AuthenticationError):
        anonymous.get(key)


def _s3(settings: Settings, secret: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL,
        aws_access_key_id=settings.S3_ACCESS_KEY_ID,
        aws_secret_access_key=secret,
        region_name=settings.S3_REGION,
        config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}),
    )


def test_s3_put_get_and_wrong_secret_rejected(settings: Settings) -> None:
    good = _s3(settings, settings.S3_SECRET_ACCESS_KEY.get_secret_value())
    key = f"tests/{uuid.uuid4()}.bin"
    payload = np.random.default_rng(1).bytes(200_000)
    good.upload_fileobj(io.BytesIO(payload), settings.S3_BUCKET_DOCUMENTS, key)  # type: ignore[attr-defined]
    body = good.get_object(Bucket=settings.S3_BUCKET_DOCUMENTS, Key=key)["Body"].read()  # type: ignore[attr-defined]
    assert body == payload
    bad = _s3(settings, "not-the-secret")
    with pytest.raises(ClientError) as excinfo:
        bad.get_object(Bucket=settings.S3_BUCKET_DOCUMENTS, Key=key)  # type: ignore[attr-defined]
    assert excinfo.value.response["Error"]["Code"] in {
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidAccessKeyId",
    }


def test_mlflow_registers_a_version_and_resolves_an_alias(
    settings: Settings, app_env: dict[str, str]
) -> None:
    import mlflow
    from mlflow import MlflowClient

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        def predict(
            self, context: object, model_input: list[str], params: dict[str, object] | None = None
        ) -> list[str]:
            return model_input

    mlflow.set_tracking_uri(settings.MLFLOW_TRACKING_URI)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=[])
    version = mlflow.register_model(info.model_uri, name)
    client = MlflowClient(settings.MLFLOW_TRACKING_URI)
    client.set_registered_model_alias(name, "champion", version.version)
    resolved = client.get_model_version_by_alias(name, "champion")
    assert resolved.version == version.version
    # The artifacts went through the server into S3 and come back from there.
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert list(loaded.predict(["x"])) == ["x"]


def test_airflow_api_answers_with_a_token_and_reports_no_import_errors(stack: LocalStack) -> None:
    from rag.stack.components.airflow import Airflow

    airflow = Airflow(stack.ctx)
    headers = {"Authorization": f"Bearer {airflow.token()}"}
    errors = httpx.get(f"{airflow.url}/api/v2/importErrors", headers=headers, timeout=10)
    errors.raise_for_status()
    assert errors.json()["total_entries"] == 0, errors.json()
    assert httpx.get(f"{airflow.url}/api/v2/dags", timeout=10).status_code == 401
