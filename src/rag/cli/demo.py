"""``make demo``: the whole product on the embedded local stack, step by step.

1. Bring the stack up (PostgreSQL + pgvector, Redis, SeaweedFS S3, MLflow, Triton, Airflow and
   the gRPC API), migrate the schema, check every component with a real call.
2. Ingest the sample corpus (``samples/corpus``: Markdown, HTML, PDF, DOCX) through the
   ``ingest_documents`` DAG, triggered over Airflow's REST API as the UI does, with progress.
3. Ask a question over gRPC and print the streamed answer, each sentence's support and the
   source sentence it was checked against.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

import grpc

from rag.core.errors import AlreadyExists, RagError
from rag.stack.config import REPO_ROOT, StackConfig
from rag.stack.stack import LocalStack

SAMPLES = REPO_ROOT / "samples" / "corpus"
TENANT = "demo"
USER = "demo"
QUESTION = "How does the body get vitamin D, and what does it do for bones?"


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _ensure_user(stack: LocalStack) -> str:
    from rag.adapters.passwords import Argon2Passwords
    from rag.adapters.postgres.pool import create_pool
    from rag.adapters.postgres.users import UserRepository
    from rag.core.auth import Role
    from rag.settings import load_settings

    password = stack.ctx.secrets["DEMO_USER_PASSWORD"]

    async def add() -> None:
        settings = load_settings(stack.app_env())
        with create_pool(settings, min_size=1, name="demo", wait=True) as pool:
            digest = await Argon2Passwords().hash(password)
            with contextlib.suppress(AlreadyExists):
                await UserRepository(pool).add(USER, digest, Role.USER, TENANT)

    asyncio.run(add())
    return password


def _ingest(stack: LocalStack) -> None:
    from rag.adapters.airflow import AirflowClient
    from rag.adapters.postgres.documents import DocumentRepository
    from rag.adapters.postgres.pool import create_pool
    from rag.settings import load_settings

    settings = load_settings(stack.app_env())
    airflow = AirflowClient(
        settings.AIRFLOW_API_URL,
        settings.AIRFLOW_USERNAME,
        settings.AIRFLOW_PASSWORD.get_secret_value() if settings.AIRFLOW_PASSWORD else None,
    )
    conf = {"source": str(SAMPLES), "tenant": TENANT}
    run_id = airflow.trigger("ingest_documents", conf)
    print(f"  triggered ingest_documents run {run_id}")
    print(f"  (Airflow UI: {settings.AIRFLOW_API_URL}/dags/ingest_documents/runs/{run_id})")
    with create_pool(settings, min_size=1, name="demo") as pool:
        documents = DocumentRepository(pool)
        deadline = time.monotonic() + 900
        state = "queued"
        while time.monotonic() < deadline:
            state = airflow.run_state("ingest_documents", run_id)
            counts = documents.counts_by_status(tenant=TENANT)
            shown = "  ".join(f"{k} {v}" for k, v in counts.items() if v)
            print(f"\r  run {state:<8} documents: {shown or 'none yet'}".ljust(100), end="", flush=True)
            if state in {"success", "failed"}:
                break
            time.sleep(2)
        print()
    airflow.close()
    if state != "success":
        raise RuntimeError(f"the ingestion run ended {state}; see the task logs in the Airflow UI")


def _ask(stack: LocalStack, password: str) -> None:
    from rag.client import RagClient, grounding_lines

    target = f"{stack.config.host}:{stack.config.ports.grpc}"
    with RagClient(target) as client:
        client.login(USER, password)
        print(f"  Q: {QUESTION}\n  A: ", end="", flush=True)
        grounding = None
        for event in client.ask(QUESTION, top_k=3, max_tokens=120):
            kind = event.WhichOneof("event")
            if kind == "token":
                print(event.token, end="", flush=True)
            elif kind == "grounding":
                grounding = event.grounding
            elif kind == "summary":
                summary = event.summary
        print()
        if grounding is not None:
            print("\n  Each sentence checked against the source sentence that best supports it:")
            for line in grounding_lines(grounding):
                print(f"  {line}")
        print(f"\n  {summary.usage.completion_tokens} tokens in {summary.took_ms / 1000:.1f} s")


def main() -> int:
    began = time.monotonic()
    try:
        stack = LocalStack(StackConfig.load())
        _step("Starting the local stack (real processes on 127.0.0.1)")
        started = stack.up()
        print(f"started: {', '.join(started) or 'nothing (already running)'}")

        _step("Health (each line is a real call: SQL, S3 request, API, model readiness)")
        rows = stack.status()
        for row in rows:
            print(f"  {row.name:<12} {'healthy' if row.healthy else 'UNHEALTHY':<10} {row.detail}")
        if not all(row.healthy for row in rows):
            print("some components are unhealthy; see the logs under .rag/logs", file=sys.stderr)
            return 1

        _step("Memory (PSS per component)")
        usage = stack.memory()
        print("  " + ", ".join(f"{name} {size / 2**20:.0f} MiB" for name, size in usage.items()))
        print(f"  total {sum(usage.values()) / 2**30:.2f} GiB")

        _step(
            f"Ingesting the sample corpus ({SAMPLES.relative_to(REPO_ROOT)}) through the ingest_documents DAG"
        )
        password = _ensure_user(stack)
        _ingest(stack)

        _step("Asking a question over gRPC (GenerationService.GenerateStream)")
        _ask(stack, password)

        _step("Endpoints")
        for name, address in stack.endpoints():
            print(f"  {name:<22} {address}")
        print(f"  {'Client settings':<22} set -a; . {stack.env_path}; set +a")
        where = f"DEMO_USER_PASSWORD in {stack.secrets_path}"
        print(f"  {'Demo user':<22} {USER} (tenant {TENANT}; password {where})")
        print(f"  {'Logs':<22} {stack.config.state_dir / 'logs'}")
        print(
            f"\nDemo finished in {time.monotonic() - began:.0f}s. The stack keeps running: `make status`, "
            "`make down` to stop it (data is kept), `make destroy` to delete it."
        )
        return 0
    except RagError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"\nerror: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
