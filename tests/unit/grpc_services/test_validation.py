"""The validation layer: every rule, the field it names, and requests that do not even parse."""

from __future__ import annotations

import math

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from grpc_services.validation import (
    MAX_PAGE_SIZE,
    RULES,
    Undecodable,
    lenient_deserializer,
    validate,
)
from rag.core.documents import MAX_METADATA_KEYS, MAX_TITLE_CHARS
from rag.core.errors import InvalidInput
from rag.proto.rag.v1 import (
    admin_pb2,
    auth_pb2,
    common_pb2,
    document_pb2,
    feedback_pb2,
    generation_pb2,
    model_pb2,
    search_pb2,
)


def _refused(request: object) -> str:
    with pytest.raises(InvalidInput) as excinfo:
        validate(request)
    return str(excinfo.value)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (search_pb2.SearchRequest(query="a\x00b"), "query: contains a NUL character (U+0000); remove it"),
        (
            search_pb2.SearchRequest(query="ok", filters=common_pb2.SearchFilters(metadata={"k\x00": "v"})),
            "filters.metadata: a key contains a NUL character",
        ),
        (
            search_pb2.SearchRequest(
                query="ok", filters=common_pb2.SearchFilters(document_ids=["a", "b\x00"])
            ),
            "filters.document_ids[1]: contains a NUL",
        ),
        (
            document_pb2.ListDocumentsRequest(status=99),  # type: ignore[arg-type]  # not a DocumentStatus
            "status: 99 is not a DocumentStatus value; use one of",
        ),
        (
            search_pb2.SearchRequest(query="ok", mode=-1),  # type: ignore[arg-type]  # not a SearchMode
            "mode: -1 is not a SearchMode value",
        ),
        (
            search_pb2.SearchRequest(query="ok", top_k=101),
            "top_k: must be between 1 and 100 (or 0 for the default)",
        ),
        (search_pb2.SearchRequest(query="ok", top_k=-5), "top_k: must be between 1 and 100"),
        (search_pb2.SearchRequest(query="x" * 1001), "query: is 1001 characters; at most 1000 are allowed"),
        (
            document_pb2.ListDocumentsRequest(page_size=MAX_PAGE_SIZE + 1),
            f"page_size: must be between 1 and {MAX_PAGE_SIZE}",
        ),
        (
            generation_pb2.GenerateRequest(question="q", max_tokens=1025),
            "max_tokens: must be between 1 and 1024",
        ),
        (
            generation_pb2.GenerateStreamRequest(question="q", temperature=math.nan),
            "temperature: must be a finite",
        ),
        (
            generation_pb2.GenerateRequest(question="q", temperature=2.5),
            "temperature: must be between 0 and 2",
        ),
        (
            generation_pb2.GenerateRequest(question="q", temperature=-0.5),
            "temperature: must be between 0 and 2",
        ),
        (admin_pb2.SystemCleanupRequest(days_old=3651), "days_old: must be between 1 and 3650"),
        (model_pb2.CleanupCacheRequest(days_old=-1), "days_old: must be between 1 and 3650"),
        (model_pb2.WarmModelsRequest(model_names=["embedder"] * 17), "model_names: has 17 items; at most 16"),
        (auth_pb2.LoginRequest(username="u" * 129, password="p"), "username: is 129 characters; at most 128"),
        (
            search_pb2.SearchRequest(
                query="ok", filters=common_pb2.SearchFilters(created_after=Timestamp(seconds=2**62))
            ),
            "filters.created_after: 4611686018427387904 seconds is outside 0001-01-01..9999-12-31",
        ),
        (
            search_pb2.SearchRequest(
                query="ok", filters=common_pb2.SearchFilters(created_before=Timestamp(seconds=1, nanos=-1))
            ),
            "filters.created_before: nanos must be between 0 and 999999999",
        ),
        (
            document_pb2.UploadRequest(
                metadata=document_pb2.UploadMetadata(title="t" * (MAX_TITLE_CHARS + 1))
            ),
            f"metadata.title: is {MAX_TITLE_CHARS + 1} characters; at most {MAX_TITLE_CHARS} are allowed",
        ),
        (
            document_pb2.UploadRequest(
                metadata=document_pb2.UploadMetadata(
                    metadata={f"k{i}": "v" for i in range(MAX_METADATA_KEYS + 1)}
                )
            ),
            f"metadata.metadata: has {MAX_METADATA_KEYS + 1} keys; at most {MAX_METADATA_KEYS} are allowed",
        ),
        (
            document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(metadata={"k" * 65: "v"})),
            "metadata.metadata: a key is 65 characters; at most 64 are allowed",
        ),
        (
            document_pb2.UploadRequest(metadata=document_pb2.UploadMetadata(metadata={"team": "v" * 1025})),
            "metadata.metadata['team']: is 1025 characters; at most 1024 are allowed",
        ),
        (
            document_pb2.UploadRequest(chunk=b"x" * (4 * 2**20 + 1)),
            "chunk: is 4194305 bytes; at most 4194304",
        ),
        (document_pb2.GetDocumentRequest(document_id="d" * 65), "document_id: is 65 characters; at most 64"),
        (feedback_pb2.GradeResultRequest(query="q", grade=7), "grade: must be between 0 and 3, got 7"),
        (feedback_pb2.GradeResultRequest(query="q", grade=-1), "grade: must be between 0 and 3, got -1"),
        (feedback_pb2.GradeResultRequest(query="x" * 1001), "query: is 1001 characters; at most 1000"),
        (feedback_pb2.GradeResultRequest(document_id="d" * 65), "document_id: is 65 characters; at most 64"),
        (feedback_pb2.GradeResultRequest(chunk_id=-3), "chunk_id: must be at least 1 (or 0 for the default)"),
    ],
)
def test_a_broken_rule_names_the_field(request_: object, expected: str) -> None:
    assert _refused(request_).startswith(expected)


def test_fields_without_a_rule_get_the_defaults() -> None:
    assert "rag.v1.ListDocumentsRequest.page_token" not in RULES
    assert _refused(document_pb2.ListDocumentsRequest(page_token="t" * 4097)).startswith(
        "page_token: is 4097 characters; at most 4096"
    )
    assert _refused(document_pb2.ListDocumentsRequest(page_token="\x00")).startswith(
        "page_token: contains a NUL"
    )


@pytest.mark.parametrize(
    "request_",
    [
        search_pb2.SearchRequest(),  # proto3 zero values: the servicer's defaults
        search_pb2.SearchRequest(query="x" * 1000, top_k=100, mode=search_pb2.SEARCH_MODE_FULLTEXT),
        generation_pb2.GenerateRequest(question="q", top_k=5, max_tokens=1024, temperature=2.0),
        document_pb2.ListDocumentsRequest(
            status=common_pb2.DOCUMENT_STATUS_QUARANTINED, page_size=MAX_PAGE_SIZE
        ),
        document_pb2.UploadRequest(
            metadata=document_pb2.UploadMetadata(
                title="t" * MAX_TITLE_CHARS, metadata={f"k{i}": "v" * 1024 for i in range(MAX_METADATA_KEYS)}
            )
        ),
        admin_pb2.SystemCleanupRequest(days_old=3650),
        feedback_pb2.GradeResultRequest(query="x" * 1000, document_id="d" * 64, chunk_id=2**62, grade=3),
        search_pb2.SearchRequest(
            query="ok", filters=common_pb2.SearchFilters(created_after=Timestamp(seconds=-62_135_596_800))
        ),
    ],
)
def test_requests_within_the_limits_pass(request_: object) -> None:
    validate(request_)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x0a\x03a\xed\xa0", "query: is not valid UTF-8"),  # a string cut inside a character
        (b"\x0a\x03\xed\xa0\x80", "query: is not valid UTF-8"),  # a lone surrogate, UTF-8 encoded
        (b"\x1a\x08\x12\x06\x0a\x01k\x12\x01\x80", "filters.metadata: is not valid UTF-8"),  # a map value
        (b"\x0a\x05ab", "the request is not a valid rag.v1.SearchRequest message"),  # truncated
        (b"\xff\xff\xff", "the request is not a valid rag.v1.SearchRequest message"),
    ],
)
def test_requests_that_do_not_parse_are_invalid_input(data: bytes, expected: str) -> None:
    parse = lenient_deserializer(search_pb2.SearchRequest.FromString)
    assert parse is not None
    request = parse(data)
    assert isinstance(request, Undecodable)
    message = _refused(request)
    assert message.startswith(expected), message


def test_a_parseable_request_is_the_message() -> None:
    parse = lenient_deserializer(search_pb2.SearchRequest.FromString)
    assert parse is not None
    assert parse(search_pb2.SearchRequest(query="ok").SerializeToString()) == search_pb2.SearchRequest(
        query="ok"
    )
