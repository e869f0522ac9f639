"""ListDocuments page tokens: anything but a token the server issued is INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from grpc_services.servicers.documents import _decode_token, _encode_token
from rag.core.errors import InvalidInput


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_a_token_round_trips() -> None:
    created, doc_id = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4()
    assert _decode_token(_encode_token(created, doc_id)) == (created, doc_id)


@pytest.mark.parametrize(
    "token",
    [
        _token(["2026-08-07T21:55:20", 6038353]),  # found by the fuzzer: uuid.UUID(int) -> AttributeError
        _token([20260807, str(uuid.uuid4())]),
        _token(["2026-02-30", str(uuid.uuid4())]),
        _token({"a": 1}),
        _token([]),
        "not base64 ~~",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_anything_else_is_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput, match="page_token: is not a token from a previous ListDocuments"):
        _decode_token(token)
