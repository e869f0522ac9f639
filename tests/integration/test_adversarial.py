"""The poison corpus, CI-sized: every kind refused with a reason, nothing left in progress, and
gRPC health SERVING throughout.

``python -m bench.adversarial`` runs the whole corpus against the local stack; this runs its
small kinds (``poison.CI_KINDS``: regex bombs, a zip bomb, entity expansion, cyclic and damaged
PDFs, binaries, over-limit sizes, titles and metadata) through the same harness. The server is
the real API (every servicer, the real stack) in this process, with a 1 MiB upload limit and
Airflow triggers off: the accepted documents are run by ``Pipeline.process_many``, what the
ingestion DAGs run, while a probe checks health every 100 ms. Each kind must be refused at the
stage its expectation names (a status for rejections); a control before the poison and one
after it must be indexed. The fuzzing of every RPC has its own test (test_grpc_fuzz.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import report
from bench.adversarial.harness import outcome, refused_table_rows, upload, wait_terminal
from bench.adversarial.poison import CI_KINDS, CI_SCALE, CONTROL_AFTER, CONTROLS, Kind, write_corpus
from bench.adversarial.probes import HealthProbe
from bench.target import client_for
from grpc_services.app import application
from rag.core.auth import Role
from rag.ingestion.pipeline import Pipeline
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def poison_api(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[str]:
    """The API on a free port: CI_SCALE's upload limit, no Airflow triggers (the test runs the pipeline)."""
    limited = settings.model_copy(
        update={"AIRFLOW_API_URL": "", "UPLOAD_MAX_BYTES": CI_SCALE.upload_max_bytes}
    )
    manager = application(limited)
    app = grpc_loop.run(manager.__aenter__())
    try:
        with running_server(grpc_loop, limited, app.servicers, readiness=app.readiness) as server:
            yield f"127.0.0.1:{server.port}"
    finally:
        grpc_loop.run(manager.__aexit__(None, None, None))


@pytest.mark.timeout(300)
def test_every_poison_kind_is_refused_with_a_reason_and_health_stays_serving(
    tmp_path: Path, poison_api: str, settings: Settings, pipeline: Pipeline
) -> None:
    control = next(k for k in CONTROLS if k.ci)
    kinds: list[Kind] = [control, *CI_KINDS, CONTROL_AFTER]
    samples = write_corpus(tmp_path, kinds, CI_SCALE)
    tenant = f"adv{uuid.uuid4().hex[:8]}"
    accepted: list[str] = []
    with client_for(poison_api, settings, tenant, timeout_s=60) as client:
        try:
            with HealthProbe(poison_api) as health:
                uploads = [upload(client, sample, timeout_s=120) for sample in samples]
                accepted = [u.document_id for u in uploads if u.document_id is not None]
                pipeline.process_many([uuid.UUID(i) for i in accepted])
                documents = wait_terminal(client, accepted, deadline=time.monotonic() + 30)
            outcomes = [outcome(u, documents) for u in uploads]
        finally:
            with client_for(poison_api, settings, tenant, role=Role.ADMIN) as admin:
                for document_id in accepted:
                    admin.delete(document_id)

    table = report.table(
        "outcomes", ["kind", "expected", "outcome", "as expected"], refused_table_rows(outcomes)
    )
    poison = [o for o in outcomes if o.expect.outcome != "indexed"]
    assert all(o.refused for o in poison), table  # rejected or quarantined, with a reason
    assert all(o.as_expected for o in outcomes), table  # at the expected stage; the controls indexed
    assert not [o for o in outcomes if o.result in {"non-terminal", "unknown"}], table
    assert health.answers["SERVING"] > 0 and health.always_serving, dict(health.answers)
