"""Upload each poison sample, follow its document to a terminal state, and judge the outcome.

An outcome is *refused* when the upload failed with a status and a message, or when the
document ended QUARANTINED with a reason. Anything else (INDEXED, still in progress when time
ran out, a refusal without a message) fails the benchmark; a refusal at another stage than the
kind's expectation is reported, and fails only the CI test, which pins each expectation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import grpc

from bench.adversarial.poison import Expect, Sample
from rag.client import RagClient
from rag.proto.rag.v1 import common_pb2, document_pb2

TERMINAL = frozenset({common_pb2.DOCUMENT_STATUS_INDEXED, common_pb2.DOCUMENT_STATUS_QUARANTINED})
# The upload concurrency bound answers RESOURCE_EXHAUSTED: the sample is sent again, later.
RETRY_CODES = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED})
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Upload:
    """What the upload of one sample got: a document, or a status."""

    sample: Sample
    started: float  # time.monotonic()
    document_id: str | None = None
    deduplicated: bool = False
    run_id: str = ""  # the ingestion run the upload triggered; empty: left to the sweeper
    code: str | None = None  # the status name when the upload failed
    details: str = ""
    retries: int = 0


@dataclass(frozen=True)
class Outcome:
    kind: str
    attack: str
    expect: Expect
    result: str  # "rejected", "quarantined", "indexed", "non-terminal", "unknown"
    code: str | None  # the upload's status, when rejected
    reason: str  # the rejection's message or the quarantine reason
    document_id: str | None

    @property
    def refused(self) -> bool:
        """Rejected or quarantined, with a reason: the benchmark's pass condition for a kind."""
        return self.result in {"rejected", "quarantined"} and bool(self.reason.strip())

    @property
    def as_expected(self) -> bool:
        """Refused at the stage the kind expects (and with its status, when rejected); for a
        control, indexed."""
        if self.expect.outcome == "indexed":
            return self.result == "indexed"
        if not self.refused:
            return False
        if self.expect.outcome == "refused":
            return True
        if self.expect.outcome == "rejected":
            return self.result == "rejected" and self.code == self.expect.status
        return self.result == self.expect.outcome

    @property
    def summary(self) -> str:
        if self.result == "rejected":
            return f"rejected {self.code}: {self.reason}"
        if self.result == "quarantined":
            return f"quarantined: {self.reason}"
        return f"{self.result}{': ' + self.reason if self.reason else ''}"


def upload(client: RagClient, sample: Sample, *, timeout_s: float = 600.0) -> Upload:
    """Upload ``sample`` (title and metadata included); RESOURCE_EXHAUSTED is retried with backoff."""
    result = Upload(sample, time.monotonic())
    for delay in (*RETRY_DELAYS_S, None):
        try:
            response = client.upload(
                sample.path,
                title=sample.kind.title,
                metadata=dict(sample.kind.metadata),
                timeout_s=timeout_s,
            )
        except grpc.RpcError as exc:
            call = cast(grpc.Call, exc)
            if call.code() in RETRY_CODES and delay is not None:
                result.retries += 1
                time.sleep(delay)
                continue
            result.code, result.details = call.code().name, call.details() or ""
            return result
        result.document_id = response.document.id
        result.deduplicated = response.deduplicated
        result.run_id = response.ingestion_run_id
        return result
    raise AssertionError("unreachable: the last attempt returns")


def wait_terminal(
    client: RagClient,
    document_ids: Iterable[str],
    *,
    deadline: float,
    poll_s: float = 0.5,
    on_terminal: Callable[[document_pb2.Document], None] = lambda document: None,
) -> dict[str, document_pb2.Document]:
    """Poll GetDocument until every document is INDEXED or QUARANTINED, or ``deadline``
    (``time.monotonic()``) passes; the last state seen of each. ``on_terminal`` is called once
    per document as it is first seen terminal. A failed lookup is tried again at the next poll
    (the stack is under attack: it may shed load)."""
    pending = set(document_ids)
    latest: dict[str, document_pb2.Document] = {}
    while True:
        for document_id in sorted(pending):
            try:
                document = client.document(document_id)
            except grpc.RpcError:
                continue
            latest[document_id] = document
            if document.status in TERMINAL:
                pending.discard(document_id)
                on_terminal(document)
        if not pending or time.monotonic() >= deadline:
            return latest
        time.sleep(poll_s)


def outcome(result: Upload, documents: dict[str, document_pb2.Document]) -> Outcome:
    kind = result.sample.kind

    def make(what: str, reason: str) -> Outcome:
        return Outcome(kind.name, kind.attack, kind.expect, what, result.code, reason, result.document_id)

    if result.document_id is None:
        return make("rejected", result.details)
    document = documents.get(result.document_id)
    if document is None:
        return make("unknown", "never looked up")
    if document.status == common_pb2.DOCUMENT_STATUS_QUARANTINED:
        return make("quarantined", document.error_reason)
    if document.status == common_pb2.DOCUMENT_STATUS_INDEXED:
        return make("indexed", "deduplicated into an existing document" if result.deduplicated else "")
    status = common_pb2.DocumentStatus.Name(document.status).removeprefix("DOCUMENT_STATUS_").lower()
    return make("non-terminal", f"still {status} after {document.attempts} attempt(s)")


def refused_table_rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    """``kind, expected, outcome, as expected`` rows for :func:`bench.report.table`."""
    return [[o.kind, str(o.expect), _short(o.summary), "yes" if o.as_expected else "NO"] for o in outcomes]


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
