"""Relevance labels in the core: grades, the qrels and queries formats, the source template."""

from __future__ import annotations

import pytest

from rag.core.errors import InvalidInput
from rag.core.labels import (
    MAX_GRADE,
    MIN_GRADE,
    Qrel,
    QrelsFormat,
    SourceTemplate,
    parse_beir_qrels,
    parse_qrels,
    parse_queries,
    parse_queries_jsonl,
    parse_queries_tsv,
    parse_trec_qrels,
    validate_external_id,
    validate_grade,
    validate_labeller,
)

BEIR = "query-id\tcorpus-id\tscore\n1\t31715818\t1\n\n3\t14717500\t0\n3\tabc\t3\n"
TREC = "1 0 31715818 1\n3\tQ0  14717500 2\n\n"


@pytest.mark.parametrize("grade", range(MIN_GRADE, MAX_GRADE + 1))
def test_grades_zero_to_three_are_accepted(grade: int) -> None:
    assert validate_grade(grade) == grade


@pytest.mark.parametrize("grade", [-1, 4, 7, True, 1.0, "2"])
def test_other_grades_are_refused_naming_the_field(grade: object) -> None:
    with pytest.raises(InvalidInput, match=r"^grade: must be an integer between 0 \(not relevant\) and 3"):
        validate_grade(grade)  # type: ignore[arg-type]


def test_labeller_and_external_id_rules() -> None:
    assert validate_labeller("alice") == "alice"
    assert validate_external_id("PLAIN-2") == "PLAIN-2"
    for bad in ("", " ", "x" * 129, "a\x00b"):
        with pytest.raises(InvalidInput, match=r"^labelled_by: "):
            validate_labeller(bad)
    for bad in ("", " 1", "x" * 257, "#12"):
        with pytest.raises(InvalidInput, match=r"^external_id: "):
            validate_external_id(bad)


def test_beir_qrels() -> None:
    assert parse_beir_qrels(BEIR, source="qrels/train.tsv") == [
        Qrel("1", "31715818", 1),
        Qrel("3", "14717500", 0),
        Qrel("3", "abc", 3),
    ]
    assert parse_qrels(BEIR, source="q.tsv", qrels_format=QrelsFormat.BEIR) == parse_beir_qrels(
        BEIR, source="q.tsv"
    )
    assert parse_beir_qrels("\ufeffquery-id\tcorpus-id\tscore\r\n1\td\t2\r\n", source="x") == [
        Qrel("1", "d", 2)
    ]


def test_trec_qrels() -> None:
    assert parse_trec_qrels(TREC, source="qrels.txt") == [Qrel("1", "31715818", 1), Qrel("3", "14717500", 2)]
    assert parse_qrels(TREC, source="t", qrels_format=QrelsFormat.TREC) == parse_trec_qrels(TREC, source="t")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"^qrels/test.tsv: empty; a BEIR qrels file starts with the header query-id<TAB>"),
        ("1\td\t1\n", r"^qrels/test.tsv line 1: expected the header query-id<TAB>corpus-id<TAB>score"),
        ("query-id corpus-id score\n", r"^qrels/test.tsv line 1: expected the header"),
        (
            "query-id\tcorpus-id\tscore\n1\td\t1\n\n1 d 1\n",
            r"^qrels/test.tsv line 4: expected 3 tab-separated fields \(query-id, corpus-id, score\), got 1",
        ),
        (
            "query-id\tcorpus-id\tscore\n1\td\thigh\n",
            r"^qrels/test.tsv line 2: the grade 'high' is not an integer",
        ),
        (
            "query-id\tcorpus-id\tscore\n1\td\t4\n",
            r"^qrels/test.tsv line 2: the grade 4 is outside 0..3 \(0 not relevant, 1 relevant",
        ),
        ("query-id\tcorpus-id\tscore\n1\td\t-1\n", r"^qrels/test.tsv line 2: the grade -1 is outside 0..3"),
        ("query-id\tcorpus-id\tscore\n\td\t1\n", r"^qrels/test.tsv line 2: the query id is empty"),
        ("query-id\tcorpus-id\tscore\n1\t\t1\n", r"^qrels/test.tsv line 2: the corpus id is empty"),
        (f"query-id\tcorpus-id\tscore\n1\t{'d' * 257}\t1\n", r"line 2: the corpus id is longer than 256"),
    ],
)
def test_beir_qrels_errors_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_beir_qrels(text, source="qrels/test.tsv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1 0 d 1\n1 0 d\n",
            r"^run.qrels line 2: expected 4 whitespace-separated fields \(qid, iteration, docid, grade\), got 3",
        ),
        ("1 0 d 1 extra\n", r"^run.qrels line 1: expected 4 whitespace-separated fields"),
        ("1 0 d 9\n", r"^run.qrels line 1: the grade 9 is outside 0..3"),
        ("1 0 d 1.5\n", r"^run.qrels line 1: the grade '1.5' is not an integer"),
    ],
)
def test_trec_qrels_errors_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_trec_qrels(text, source="run.qrels")


def test_queries_jsonl_and_tsv() -> None:
    jsonl = (
        '{"_id": "1", "text": " 0-dimensional biomaterials lack inductive properties. ", "metadata": {}}\n\n'
    )
    jsonl += '{"_id": 3, "text": "1,000 genomes project"}\n'
    expected = {"1": "0-dimensional biomaterials lack inductive properties.", "3": "1,000 genomes project"}
    assert parse_queries_jsonl(jsonl, source="queries.jsonl") == expected
    assert parse_queries(jsonl, source="scifact/queries.jsonl") == expected
    tsv = "1\t0-dimensional biomaterials lack inductive properties.\n3\t1,000 genomes project\n"
    assert parse_queries_tsv(tsv, source="queries.tsv") == expected
    assert parse_queries(tsv, source="topics.tsv") == expected
    assert parse_queries_tsv("7\ta\tb\n", source="q.tsv") == {"7": "a\tb"}  # tabs inside the text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"_id": "1", "text": "a"}\n{"_id": "2"\n', r"^queries.jsonl line 2: not a JSON object \("),
        ('["1", "a"]\n', r"^queries.jsonl line 1: expected a JSON object with _id and text"),
        ('{"text": "a"}\n', r"^queries.jsonl line 1: _id must be a string, got None"),
        ('{"_id": "1", "text": 5}\n', r"^queries.jsonl line 1: text must be a string, got 5"),
        ('{"_id": "1", "text": "   "}\n', r"^queries.jsonl line 1: the text of query '1' must not be empty"),
        (
            '{"_id": "1", "text": "' + "w" * 1001 + '"}\n',
            r"^queries.jsonl line 1: the text of query '1' is 1001 characters; at most 1000",
        ),
        (
            '{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n',
            r"^queries.jsonl line 2: query '1' appears twice with different texts",
        ),
        ('{"_id": " ", "text": "a"}\n', r"^queries.jsonl line 1: the query id is empty"),
    ],
)
def test_queries_jsonl_errors_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_queries_jsonl(text, source="queries.jsonl")


def test_queries_tsv_errors_name_the_file_and_line() -> None:
    with pytest.raises(InvalidInput, match=r"^q.tsv line 2: expected qid<TAB>text, found no tab"):
        parse_queries_tsv("1\ta\n2 b\n", source="q.tsv")
    with pytest.raises(InvalidInput, match=r"^q.tsv line 1: the text of query '1' must not be empty"):
        parse_queries_tsv("1\t \n", source="q.tsv")


def test_source_template_fills_and_reverses() -> None:
    template = SourceTemplate("beir://scifact/{id}.txt")
    assert template.prefix == "beir://scifact/"
    assert template.source_uri("31715818") == "beir://scifact/31715818.txt"
    assert template.corpus_id("beir://scifact/31715818.txt") == "31715818"
    assert template.corpus_id("beir://scifact/.txt") is None
    assert template.corpus_id("beir://nfcorpus/1.txt") is None
    assert template.corpus_id("beir://scifact/1.pdf") is None
    plain = SourceTemplate()
    assert plain.source_uri("doc-1") == "doc-1" and plain.corpus_id("doc-1") == "doc-1"
    for bad in ("beir://scifact/", "{id}/{id}"):
        with pytest.raises(InvalidInput, match=r"^source_template: must hold \{id\} exactly once"):
            SourceTemplate(bad)
