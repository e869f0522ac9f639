"""Every upload acknowledged to a client survives kill -9 of PostgreSQL, the object store or the
API right after the acknowledgement (issue 13, item 4).

Uploads stream one after another; the moment the server acknowledges the third, the component
is killed with -9 (uploads in flight then fail: they were never acknowledged). ``make up``'s
``LocalStack.up()`` brings it back, and every acknowledged id is there: its row (through the
API, as its owner sees it) and its bytes in object storage, unchanged.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import uuid
from pathlib import Path

import boto3
import grpc
import pytest

from rag.adapters.tokens import JwtTokens
from rag.client import RagClient, Tokens
from rag.core.auth import Principal, Role
from rag.ingestion.intake import blob_key
from rag.settings import Settings
from rag.stack.process import wait_until
from rag.stack.stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

KILL_AFTER_ACKS = 3
MAX_UPLOADS = 40


def _client(stack: LocalStack, settings: Settings, tenant: str) -> RagClient:
    token = JwtTokens.from_settings(settings).issue_access(
        Principal.of(f"durable-{tenant}", tenant, Role.USER)
    )
    return RagClient(
        f"{stack.config.host}:{stack.config.ports.grpc}", tokens=Tokens(token.token), timeout_s=20
    )


def _upload_until_killed(
    client: RagClient, folder: Path, victim_pid: int, acknowledged: dict[str, str]
) -> None:
    """Upload distinct files until one fails; kill ``victim_pid`` right after the third ack."""
    for n in range(MAX_UPLOADS):
        path = folder / f"note-{n:03d}.txt"
        path.write_text(f"Durability note {n} {uuid.uuid4().hex}: acknowledged means stored.\n" * 20)
        try:
            response = client.upload(path, title=path.name, timeout_s=20)
        except grpc.RpcError:
            return  # the victim is gone: this upload was never acknowledged
        acknowledged[response.document.id] = hashlib.sha256(path.read_bytes()).hexdigest()
        if len(acknowledged) == KILL_AFTER_ACKS:
            os.kill(victim_pid, signal.SIGKILL)
    raise AssertionError(f"{MAX_UPLOADS} uploads went through after the kill")


@pytest.mark.parametrize("victim", ["postgres", "objectstore", "api"])
def test_every_acknowledged_upload_survives_kill_9(
    own_stack: LocalStack, own_settings: Settings, victim: str, tmp_path: Path
) -> None:
    tenant = f"durable-{victim}-{uuid.uuid4().hex[:6]}"
    pid = own_stack.components[victim].running_pid()
    assert pid is not None
    acknowledged: dict[str, str] = {}
    with _client(own_stack, own_settings, tenant) as client:
        worker = threading.Thread(target=_upload_until_killed, args=(client, tmp_path, pid, acknowledged))
        worker.start()
        worker.join(timeout=300)
        assert not worker.is_alive()
    assert len(acknowledged) >= KILL_AFTER_ACKS
    wait_until(
        lambda: own_stack.components[victim].running_pid() is None, timeout=30, what=f"{victim} to die"
    )

    restarted = own_stack.up()
    assert victim in restarted

    s3 = boto3.client(
        "s3",
        endpoint_url=own_settings.S3_ENDPOINT_URL,
        aws_access_key_id=own_settings.S3_ACCESS_KEY_ID,
        aws_secret_access_key=own_settings.S3_SECRET_ACCESS_KEY.get_secret_value(),
        region_name="us-east-1",
    )
    with _client(own_stack, own_settings, tenant) as client:
        listed = {document.id for document in client.documents()}
        assert set(acknowledged) <= listed, f"lost after kill -9 of {victim}: {set(acknowledged) - listed}"
        for document_id, digest in acknowledged.items():
            document = client.document(document_id)
            assert document.content_hash == digest
            body = s3.get_object(Bucket=own_settings.S3_BUCKET_DOCUMENTS, Key=blob_key(tenant, digest))[
                "Body"
            ].read()
            assert hashlib.sha256(body).hexdigest() == digest
