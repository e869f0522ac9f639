"""Parser worker processes (real ones): reused across documents, replaced when they die, and
output limits that name their setting. The limits on memory, CPU and wall time are exercised
through the pipeline in tests/integration/test_parser_isolation.py."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.core.chunking import ChunkingOptions
from rag.core.errors import UnprocessableDocument
from rag.parsing import parse
from rag.parsing.extraction import Extracted, InProcessParser
from rag.parsing.isolation import ParserPool
from rag.parsing.limits import ParseLimits
from tests.fixtures.corpus import make_pdf, mixed_corpus
from tests.fixtures.hostile import cpu_burning_pdf, docx_memory_bomb, parser_workers

CORPUS = mixed_corpus()
CHUNKING = ChunkingOptions()


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    # Named: the session's other pools (integration fixtures) have idle workers too.
    with ParserPool(ParseLimits(max_memory_mb=256, max_cpu_s=1, timeout_s=60), name="unit") as parsers:
        yield parsers


def _extract(pool: ParserPool, data: bytes) -> Extracted:
    return pool.extract(data, filename="doc", chunking=CHUNKING)


@pytest.mark.timeout(60)
def test_documents_are_parsed_in_one_reused_worker_without_torch(pool: ParserPool) -> None:
    first = _extract(pool, CORPUS["guide.md"])
    assert first.title == "Sleep guide"
    assert any(c.heading == "Sleep guide > Why sleep matters" for c in first.chunks)
    assert first.peak_rss_bytes is not None and 0 < first.peak_rss_bytes < 256 * 2**20
    [worker] = parser_workers("idle", pool="unit")
    assert _extract(pool, CORPUS["bp.pdf"]).title == "Blood pressure notes"
    assert parser_workers("idle", pool="unit") == [worker]
    maps = Path(f"/proc/{worker}/maps").read_text()
    assert "torch" not in maps and "lxml" in maps


@pytest.mark.timeout(60)
def test_a_worker_killed_while_idle_is_replaced(pool: ParserPool) -> None:
    _extract(pool, CORPUS["notes.txt"])
    [worker] = parser_workers("idle", pool="unit")
    os.kill(worker, signal.SIGKILL)
    while Path(f"/proc/{worker}").exists():
        time.sleep(0.01)
    assert _extract(pool, CORPUS["notes.txt"]).chunks
    assert parser_workers("idle", pool="unit") not in ([], [worker])


@pytest.mark.timeout(60)
def test_a_worker_left_large_by_a_document_is_replaced(pool: ParserPool) -> None:
    _extract(pool, CORPUS["notes.txt"])
    [worker] = parser_workers("idle", pool="unit")
    with pytest.raises(UnprocessableDocument, match=r"memory limit of 256 MiB \(PARSE_MAX_MEMORY_MB\)"):
        _extract(pool, docx_memory_bomb(300_000))
    # The worker survived its failed allocation, but the next document gets a fresh one.
    assert _extract(pool, CORPUS["report.docx"]).title == "Diabetes report"
    assert parser_workers("idle", pool="unit") not in ([], [worker])


@pytest.mark.timeout(120)
def test_the_cpu_budget_is_per_document(pool: ParserPool) -> None:
    # Each takes a fraction of the 1 s limit; together they would pass it.
    busy = cpu_burning_pdf(pages=1, operators=30_000)
    for _ in range(12):
        assert _extract(pool, busy).chunks


def _words(text: str) -> int:
    return len(text.split())


def test_output_limits_name_their_setting() -> None:
    with pytest.raises(UnprocessableDocument, match=r"more than 50 characters of text \(PARSE_MAX_CHARS\)"):
        parse(b"word " * 100, limits=ParseLimits(max_chars=50))
    three_pages = make_pdf([["one"], ["two"], ["three"]])
    with pytest.raises(UnprocessableDocument, match=r"3 pages; the limit is 2 \(PARSE_MAX_PAGES\)"):
        parse(three_pages, limits=ParseLimits(max_pages=2))
    parser = InProcessParser(_words, ParseLimits(max_chunks=2))
    text = "\n\n".join(f"Paragraph {n} has a few words of its own." for n in range(20)).encode()
    with pytest.raises(UnprocessableDocument, match=r"makes \d+ chunks; the limit is 2 \(PARSE_MAX_CHUNKS\)"):
        parser.extract(text, filename="t.txt", chunking=ChunkingOptions(chunk_tokens=16, overlap_tokens=0))


@pytest.mark.timeout(120)
def test_workers_run_under_a_main_script_that_cannot_be_imported_again(tmp_path: Path) -> None:
    """An Airflow task's main is the ``airflow`` console script, whose import in a fresh process
    fails (tasks may not reach the metadata database): workers must not import the parent's main."""
    import subprocess
    import sys

    script = tmp_path / "task_runner.py"
    script.write_text(
        "if __name__ != '__main__':\n"
        "    raise SystemExit('the main script was imported again in a worker')\n"
        "from rag.core.chunking import ChunkingOptions\n"
        "from rag.parsing.isolation import ParserPool\n"
        "from rag.parsing.limits import ParseLimits\n"
        "with ParserPool(ParseLimits()) as pool:\n"
        "    out = pool.extract(b'One sentence. Another one.', filename='a.txt', chunking=ChunkingOptions())\n"
        "print('chunks', len(out.chunks))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "chunks 1"
