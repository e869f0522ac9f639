"""The webhook receiver caps request bodies on a real server (uvicorn), chunked ones included."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator

import pytest

from rag.modelops.webhook import MAX_BODY_BYTES, PATH, PromotionWorker, WebhookServer, create_app, sign

SECRET = "s" * 64


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    worker = PromotionWorker(lambda kind, version: None)
    running = WebhookServer(create_app(SECRET, worker))
    running.start()
    try:
        yield running
    finally:
        running.stop()
        worker.close()


def _connection(server: WebhookServer) -> http.client.HTTPConnection:
    # The timeout is a hang guard: a receiver that waits for the rest of the body never answers.
    return http.client.HTTPConnection(server.host, server.port, timeout=20)


def test_a_chunked_body_over_the_cap_is_refused_before_it_ends(server: WebhookServer) -> None:
    conn = _connection(server)
    try:
        conn.putrequest("POST", PATH)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        piece = b"x" * 16384
        # Twice the cap, and no final chunk: only a receiver that stops at the cap can answer.
        for _ in range(2 * MAX_BODY_BYTES // len(piece)):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        answer = conn.getresponse()
        assert answer.status == 413
        assert f"body over {MAX_BODY_BYTES} bytes" in json.loads(answer.read())["error"]
    finally:
        conn.close()


def test_a_declared_length_over_the_cap_or_not_a_number_is_refused_unread(server: WebhookServer) -> None:
    for length, status in ((str(MAX_BODY_BYTES + 1), 413), ("12abc", 400)):
        conn = _connection(server)
        try:
            conn.putrequest("POST", PATH)
            conn.putheader("Content-Length", length)
            conn.endheaders()  # no body at all: the answer must not wait for it
            assert conn.getresponse().status == status
        finally:
            conn.close()


def test_a_chunked_body_under_the_cap_is_read_whole(server: WebhookServer) -> None:
    body = json.dumps(
        {"entity": "model_version_alias", "action": "created", "data": {"name": "x", "alias": "a"}}
    ).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(SECRET, "d-1", stamp, body),
    }
    conn = _connection(server)
    try:
        conn.request("POST", PATH, body=iter([body[:10], body[10:]]), headers=headers, encode_chunked=True)
        answer = conn.getresponse()
        assert (answer.status, json.loads(answer.read())["status"]) == (200, "ignored")
    finally:
        conn.close()
