"""No client input gets INTERNAL or UNKNOWN: a seeded property test drives every RPC of the API,
after the two cases issue 12 measured (both INTERNAL before).

The server is the real one (every servicer, the real stack) with Airflow triggers off (the
fuzzed uploads stay RECEIVED in a tenant of their own and are deleted after) and a rate limit
the fuzzer does not reach. ``bench.adversarial.fuzz`` does the driving; the adversarial
benchmark runs the same code with 10,000 examples.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest

from bench.adversarial.fuzz import SERVER_ERRORS, fuzz, rpcs, summary
from grpc_services.app import application
from rag.adapters.tokens import JwtTokens
from rag.core.auth import Principal, Role
from rag.proto.rag.v1 import document_pb2, document_pb2_grpc, search_pb2, search_pb2_grpc
from rag.settings import Settings
from tests.fixtures.grpc_server import EventLoopThread, running_server

pytestmark = pytest.mark.integration

EXAMPLES = 2000


@pytest.fixture(scope="module")
def fuzz_server(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[str]:
    quiet = settings.model_copy(
        update={
            "AIRFLOW_API_URL": "",  # no ingestion runs for the fuzzed uploads
            "RATE_LIMIT_PER_SECOND": 100_000.0,
            "RATE_LIMIT_BURST": 100_000,
            "UPLOAD_MAX_BYTES": 64 * 1024,
        }
    )
    manager = application(quiet)
    app = grpc_loop.run(manager.__aenter__())
    try:
        with running_server(grpc_loop, quiet, app.servicers, readiness=app.readiness) as server:
            yield f"127.0.0.1:{server.port}"
    finally:
        grpc_loop.run(manager.__aexit__(None, None, None))


def _delete_all(channel: grpc.Channel, auth: tuple[tuple[str, str], ...]) -> None:
    stub = document_pb2_grpc.DocumentServiceStub(channel)
    while True:
        page = stub.ListDocuments(document_pb2.ListDocumentsRequest(page_size=200), metadata=auth, timeout=30)
        if not page.documents:
            return
        for document in page.documents:
            stub.DeleteDocument(
                document_pb2.DeleteDocumentRequest(document_id=document.id), metadata=auth, timeout=30
            )


def _admin(settings: Settings, tenant: str) -> tuple[tuple[str, str], ...]:
    token = JwtTokens.from_settings(settings).issue_access(Principal.of("fuzz-admin", tenant, Role.ADMIN))
    return (("authorization", f"Bearer {token.token}"),)


def test_a_nul_in_a_hybrid_query_and_an_unknown_status_are_invalid_argument(
    fuzz_server: str, settings: Settings
) -> None:
    auth = _admin(settings, "fuzzmeasured")
    with grpc.insecure_channel(fuzz_server) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            search_pb2_grpc.SearchServiceStub(channel).Search(
                search_pb2.SearchRequest(query="vitamin\x00d", mode=search_pb2.SEARCH_MODE_HYBRID),
                metadata=auth,
                timeout=30,
            )
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == "query: contains a NUL character (U+0000); remove it"
        with pytest.raises(grpc.RpcError) as caught:
            document_pb2_grpc.DocumentServiceStub(channel).ListDocuments(
                document_pb2.ListDocumentsRequest(status=99),  # type: ignore[arg-type]  # not a DocumentStatus
                metadata=auth,
                timeout=30,
            )
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (caught.value.details() or "").startswith(
            "status: 99 is not a DocumentStatus value; use one of"
        )


@pytest.mark.timeout(300)
def test_no_request_gets_internal_or_unknown_and_health_stays_serving(
    fuzz_server: str, settings: Settings
) -> None:
    auth = _admin(settings, f"fuzz{uuid.uuid4().hex[:8]}")
    with grpc.insecure_channel(fuzz_server) as channel:
        try:
            report = fuzz(channel, EXAMPLES, metadata=auth, timeout_s=30)
        finally:
            _delete_all(channel, auth)
    assert report.examples >= EXAMPLES
    assert {rpc.path for rpc in rpcs()} <= report.by_method.keys()  # every RPC was driven
    assert report.server_errors == 0, "\n".join(
        [
            summary(report),
            *(f"{f.method} {f.code} {f.details!r} <- {f.request}" for f in report.failures[:20]),
        ]
    )
    assert not SERVER_ERRORS & report.codes.keys()
    assert report.always_serving and report.health["SERVING"] >= EXAMPLES // 25, report.health
