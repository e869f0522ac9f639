"""The Triton and PostgreSQL cells of ``python -m bench.faults`` on a small corpus (issue 13,
item 7): while an ``ingest_documents`` run processes 20 short texts of the tests' corpus, 2 clients search and
uploads stream, the component is killed with -9, then ``LocalStack.up()`` (what ``make up``
runs) brings it back, once, with no other step. Nothing is lost or duplicated, every document
ends terminal, no run is green with unfinished work, nothing answers INTERNAL or UNKNOWN after
recovery, and the API is SERVING within 30 s of the component's return.

The sweeper is triggered by the cell (as its 10-minute schedule would) only once no run of the
tenant is left and documents are still not terminal; here with a period of 60 s.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from bench.faults.cell import run_cell
from bench.faults.corpus import Corpus
from bench.target import Target
from rag.settings import Settings
from rag.stack.stack import LocalStack
from tests.fixtures.beir import MORE_TOPICS
from tests.fixtures.corpus import QUESTIONS, TOPICS

DOCUMENTS = 20


def _corpus(cell: str) -> Corpus:
    """The tests' own 24 health texts (no benchmark data needed): 20 as the run's files, made
    unique to the cell, all of them as upload texts and as the searchers' tenant."""
    texts = {**TOPICS, **MORE_TOPICS}
    files = [(f"{n:06d}.txt", f"{text}\n\n[faults {cell}]") for n, text in enumerate(texts.values())]
    return Corpus(
        name="tests",
        documents=files[:DOCUMENTS],
        queries=[question for question, _ in QUESTIONS],
        upload_texts=list(texts.values()),
        search_texts=[(f"tests://{name}", text) for name, text in texts.items()],
    )


pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.mark.parametrize("cell", ["triton", "postgres"])
def test_a_killed_component_loses_nothing_and_the_stack_heals(
    own_stack: LocalStack, own_settings: Settings, cell: str
) -> None:
    result = run_cell(
        Target(own_stack, own_settings),
        cell,
        documents=DOCUMENTS,
        corpus=_corpus(cell),
        kill_after_s=5.0,
        recover_after_s=5.0,
        searchers=2,
        upload_interval_s=1.0,
        load_after_s=10.0,
        settle_s=420.0,
        sweep_period_s=60.0,
    )
    detail = json.dumps(asdict(result), indent=1, default=str)
    failed = [name for name, ok in result.verdicts().items() if not ok]
    assert not failed, f"{cell}: {failed}\n{detail}"
    assert not result.up_errors, f"make up did not heal {cell} at the first call\n{detail}"
    assert cell in result.restarted, detail
    assert result.uploads_acknowledged > 0 and result.statuses.get("indexed", 0) >= DOCUMENTS, detail
    assert all(state in {"success", "failed"} for state in result.runs), detail  # every run ended
