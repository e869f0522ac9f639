"""``rag labels import|list|export`` on a tiny ingested corpus: BEIR in, a listing, BEIR and TREC
out, and the same labels back in; one-line errors with exit 2."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.labels import LabelRepository
from rag.cli import main as rag_cli
from rag.core.labels import LabelledQuery
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from rag.stack.stack import LocalStack

pytestmark = pytest.mark.integration

TEMPLATE = "beir://tiny/{id}.txt"
CORPUS = {
    "d1": "Vitamin D\n\nSunlight on the skin makes vitamin D, which keeps bones strong.",
    "d2": "Tomatoes\n\nTomatoes need full sun, deep watering and a stake to climb.",
    "d3": "Asthma\n\nInhalers relieve the wheezing of asthma attacks.",
}
QUERIES = [
    {"_id": "q1", "text": "What makes vitamin D?"},
    {"_id": "q2", "text": "How are asthma attacks relieved?"},
    {"_id": "q3", "text": "A query without labels"},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\nq2\tgone\t1\n"


@dataclass
class Corpus:
    tenant: str
    ids: dict[str, str]  # corpus id -> document id
    folder: Path


@pytest.fixture
def corpus(intake: Intake, pipeline: Pipeline, pool: ConnectionPool, tmp_path: Path) -> Iterator[Corpus]:
    tenant = f"lc{uuid.uuid4().hex[:8]}"
    ids = {}
    for corpus_id, text in CORPUS.items():
        received = intake.receive(text.encode(), tenant=tenant, source_uri=TEMPLATE.format(id=corpus_id))
        assert pipeline.process(received.document.id).status.value == "indexed"
        ids[corpus_id] = str(received.document.id)
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "train.tsv").write_text(QRELS)
    (tmp_path / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    try:
        yield Corpus(tenant, ids, tmp_path)
    finally:
        LabelRepository(pool).delete(tenant)
        intake.delete([uuid.UUID(i) for i in ids.values()], tenant=tenant)


@pytest.fixture
def cli(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str) -> tuple[int, str, str]:
        code = rag_cli(["--env-file", str(stack.env_path), "labels", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _import(cli: Any, corpus: Corpus, qrels: Path, queries: Path, *extra: str) -> tuple[int, str, str]:
    result: tuple[int, str, str] = cli(
        "import", "--tenant", corpus.tenant, "--qrels", str(qrels), "--queries", str(queries), *extra
    )
    return result


def test_import_list_export_round_trip(cli: Any, corpus: Corpus, pool: ConnectionPool) -> None:
    folder, ids = corpus.folder, corpus.ids
    code, out, err = _import(
        cli,
        corpus,
        folder / "qrels" / "train.tsv",
        folder / "queries.jsonl",
        "--source-template",
        TEMPLATE,
        "--labelled-by",
        "beir-tiny",
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"imported 3 labels of 2 queries into tenant {corpus.tenant}",
        "unmapped: 1 labels naming 1 corpus ids with no document of the tenant (e.g. gone)",
    ]
    expected = [
        LabelledQuery("q1", "What makes vitamin D?", {ids["d1"]: 2, ids["d2"]: 0}),
        LabelledQuery("q2", "How are asthma attacks relieved?", {ids["d3"]: 1}),
    ]
    assert LabelRepository(pool).labelled_queries(corpus.tenant) == expected

    code, out, _ = cli("list", "--tenant", corpus.tenant)
    header, *rows = out.splitlines()
    assert code == 0 and header.split() == ["QUERY", "GRADE", "DOCUMENT", "SOURCE", "BY", "LABELLED", "TEXT"]
    assert sorted((r.split()[0], r.split()[1], r.split()[2]) for r in rows) == [
        ("q1", "0", ids["d2"]),
        ("q1", "2", ids["d1"]),
        ("q2", "1", ids["d3"]),
    ]
    assert all(r.split()[3:5] == ["import", "beir-tiny"] for r in rows)
    assert len(cli("list", "--tenant", corpus.tenant, "--limit", "1")[1].splitlines()) == 2

    out_dir = folder / "out"
    code, out, _ = cli(
        "export",
        "--tenant",
        corpus.tenant,
        "--format",
        "beir",
        "--out",
        str(out_dir),
        "--source-template",
        TEMPLATE,
    )
    assert code == 0 and out.startswith("exported 3 labels of 2 queries to ")
    exported = (out_dir / "qrels" / "train.tsv").read_text().splitlines()
    assert exported[0] == "query-id\tcorpus-id\tscore"
    assert sorted(exported[1:]) == sorted(line for line in QRELS.splitlines()[1:] if "gone" not in line)
    assert [json.loads(line) for line in (out_dir / "queries.jsonl").read_text().splitlines()] == QUERIES[:2]

    # Back in: the same labels, nothing duplicated.
    code, out, _ = _import(
        cli, corpus, out_dir / "qrels" / "train.tsv", out_dir / "queries.jsonl", "--source-template", TEMPLATE
    )
    assert code == 0 and out == f"imported 3 labels of 2 queries into tenant {corpus.tenant}\n"
    assert LabelRepository(pool).labelled_queries(corpus.tenant) == expected

    # TREC, to a file, without the template: documents by their id (and said so).
    trec = folder / "trec" / "labels.qrels"
    code, out, _ = cli("export", "--tenant", corpus.tenant, "--format", "trec", "--out", str(trec))
    assert code == 0 and len(out.splitlines()) == 1  # every source is a name under the template {id}
    assert sorted(trec.read_text().splitlines()) == sorted(
        [
            f"q1 0 {TEMPLATE.format(id='d1')} 2",
            f"q1 0 {TEMPLATE.format(id='d2')} 0",
            f"q2 0 {TEMPLATE.format(id='d3')} 1",
        ]
    )
    assert (folder / "trec" / "labels.queries.tsv").read_text() == (
        "q1\tWhat makes vitamin D?\nq2\tHow are asthma attacks relieved?\n"
    )
    code, out, _ = cli(
        "export",
        "--tenant",
        corpus.tenant,
        "--format",
        "trec",
        "--out",
        str(folder / "t2"),
        "--source-template",
        "x/{id}",
    )
    assert code == 0 and "3 documents named by their id: their source_uri does not match 'x/{id}'" in out
    assert f"q1 0 {ids['d1']} 2" in (folder / "t2" / "qrels.txt").read_text().splitlines()


def test_a_trec_file_may_name_documents_by_their_id(cli: Any, corpus: Corpus, pool: ConnectionPool) -> None:
    qrels = corpus.folder / "by-id.qrels"
    qrels.write_text(f"q1 0 {corpus.ids['d1']} 3\nq2 0 {uuid.uuid4()} 1\n")
    queries = corpus.folder / "queries.tsv"
    queries.write_text("q1\tWhat makes vitamin D?\nq2\tsomething else\n")
    code, out, _ = _import(cli, corpus, qrels, queries, "--format", "trec")
    assert code == 0 and out.startswith(f"imported 1 labels of 1 queries into tenant {corpus.tenant}\n")
    assert LabelRepository(pool).labelled_queries(corpus.tenant) == [
        LabelledQuery("q1", "What makes vitamin D?", {corpus.ids["d1"]: 3})
    ]


@pytest.mark.parametrize(
    ("qrels", "extra", "message"),
    [
        (QRELS, ("--source-template", "beir://other/{id}.txt"), "error: none of the 4 labels of "),
        (QRELS.replace("q1\td1\t2", "q1\td1\t5"), (), "line 2: the grade 5 is outside 0..3"),
        (
            QRELS,
            ("--source-template", "no-placeholder"),
            "error: source_template: must hold {id} exactly once",
        ),
        (QRELS, ("--tenant", "Not Valid"), "error: tenant: must be"),
    ],
)
def test_import_refuses_in_one_line(
    cli: Any, corpus: Corpus, pool: ConnectionPool, qrels: str, extra: tuple[str, ...], message: str
) -> None:
    path = corpus.folder / "bad.tsv"
    path.write_text(qrels)
    code, out, err = _import(cli, corpus, path, corpus.folder / "queries.jsonl", *extra)
    assert (code, out) == (2, "")
    assert message in err and err.startswith("error: ") and len(err.splitlines()) == 1
    assert LabelRepository(pool).labelled_queries(corpus.tenant) == []


def test_missing_files_and_an_empty_tenant_are_one_line_errors(cli: Any, corpus: Corpus) -> None:
    code, _, err = _import(cli, corpus, corpus.folder / "nope.tsv", corpus.folder / "queries.jsonl")
    assert (code, err) == (2, f"error: --qrels {corpus.folder / 'nope.tsv'}: no such file\n")
    code, _, err = cli("export", "--tenant", corpus.tenant, "--out", str(corpus.folder / "x"))
    assert (code, err) == (2, f"error: tenant {corpus.tenant} has no labels to export\n")
