"""Hostile documents in a batch: each past a parser limit is quarantined with the limit's name,
its worker is replaced, and the next document of the same batch is indexed (real processes)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import psycopg
import pytest

from rag.core.documents import DocumentStatus
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Outcome, Pipeline
from rag.parsing.isolation import ParserPool
from rag.parsing.limits import ParseLimits
from tests.fixtures.hostile import cpu_burning_pdf, docx_memory_bomb, html_memory_bomb, kill_when_parsing

pytestmark = pytest.mark.integration

AFTER = b"# Next in line\n\nThis document follows a hostile one in the same batch and is indexed."
MEMORY = "parser exceeded its memory limit of 256 MiB (PARSE_MAX_MEMORY_MB)"


@pytest.fixture(scope="module")
def limited(pipeline: Pipeline) -> Iterator[Pipeline]:
    """The pipeline with one parser pool (256 MiB, 1 CPU second) for every test here."""
    with ParserPool(ParseLimits(max_memory_mb=256, max_cpu_s=1, timeout_s=60)) as parsers:
        yield replace(pipeline, parser=parsers)


def _batch(
    intake: Intake,
    pipeline: Pipeline,
    name: str,
    data: bytes,
    *,
    during: Callable[[str], object] | None = None,
) -> tuple[Outcome, Outcome]:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    hostile = intake.receive(data, tenant=tenant, source_uri=f"file:///hostile/{name}", filename=name)
    after = intake.receive(AFTER, tenant=tenant, source_uri="file:///hostile/after.md", filename="after.md")
    if during is not None:
        during(str(hostile.document.id))
    first, second = pipeline.process_many([hostile.document.id, after.document.id])
    return first, second


def _assert_quarantined_then_indexed(
    db: psycopg.Connection, first: Outcome, second: Outcome, reason: str
) -> None:
    assert (first.status, first.reason) == (DocumentStatus.QUARANTINED, reason)
    row = db.execute("SELECT status::text, error_reason FROM documents WHERE id = %s", (first.document_id,))
    assert row.fetchone() == ("quarantined", reason)
    assert second.status is DocumentStatus.INDEXED and second.chunks >= 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        # 4 MB of <p>: about 270 bytes of parsed tree each (a BeautifulSoup tree took 900).
        ("bomb.html", lambda: html_memory_bomb(1_000_000), MEMORY),
        # 1.9 MB zipped, 14 MB of XML: python-docx's tree takes about 20 times that.
        ("bomb.docx", lambda: docx_memory_bomb(300_000), MEMORY),
        # 9 KB: text extraction interprets 8 million operators.
        ("busy.pdf", cpu_burning_pdf, "parser exceeded its CPU limit of 1 s (PARSE_MAX_CPU_S)"),
    ],
    ids=["html-memory-bomb", "docx-memory-bomb", "cpu-burning-pdf"],
)
def test_a_document_past_a_limit_is_quarantined_and_the_batch_goes_on(
    intake: Intake,
    limited: Pipeline,
    db: psycopg.Connection,
    name: str,
    make: Callable[[], bytes],
    reason: str,
) -> None:
    first, second = _batch(intake, limited, name, make())
    _assert_quarantined_then_indexed(db, first, second, reason)


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_parse_is_replaced_and_the_batch_goes_on(
    intake: Intake, limited: Pipeline, db: psycopg.Connection
) -> None:
    first, second = _batch(intake, limited, "busy.pdf", cpu_burning_pdf(), during=kill_when_parsing)
    reason = "parser worker was killed by SIGKILL while parsing this document"
    assert (first.reason or "").startswith(reason)
    _assert_quarantined_then_indexed(db, first, second, first.reason or "")


@pytest.mark.timeout(120)
def test_a_document_past_the_wall_time_limit_is_quarantined(
    intake: Intake, pipeline: Pipeline, db: psycopg.Connection
) -> None:
    with ParserPool(ParseLimits(max_cpu_s=600, timeout_s=1)) as parsers:
        first, second = _batch(intake, replace(pipeline, parser=parsers), "busy.pdf", cpu_burning_pdf())
    _assert_quarantined_then_indexed(
        db, first, second, "parser exceeded its time limit of 1 s (PARSE_TIMEOUT_S)"
    )
