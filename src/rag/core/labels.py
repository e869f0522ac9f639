"""Relevance labels: a query of a tenant, a document, and how relevant the document is to it.

Labels arrive two ways: a caller grades a search result of its own query (``FeedbackService``,
source ``feedback``), or an operator loads a benchmark's qrels (``rag labels import``, source
``import``). Either way a (query, document) pair holds one grade, the latest, with who gave it
and when. The training code reads them as :class:`LabelledQuery` values.

This module also parses the two qrels formats and the two queries formats the import reads:

- BEIR ``qrels/*.tsv``: a header ``query-id<TAB>corpus-id<TAB>score``, then one label a line;
- TREC qrels: ``qid iteration docid grade``, separated by any whitespace, no header;
- BEIR ``queries.jsonl``: one ``{"_id": ..., "text": ...}`` object a line;
- a TSV of ``qid<TAB>text`` lines.

Blank lines are skipped. Every error names the file and the line; a grade outside
:data:`MIN_GRADE`..:data:`MAX_GRADE` is refused, never clamped.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from rag.core.errors import InvalidInput
from rag.core.search import validate_query

# Graded relevance, as TREC and BEIR use it.
MIN_GRADE = 0  # not relevant
MAX_GRADE = 3  # 1 relevant, 2 highly relevant, 3 perfect
MAX_EXTERNAL_ID_CHARS = 256  # a benchmark's query or document id (also a CHECK of label_queries)
MAX_LABELLER_CHARS = 128  # a username's length (rag.core.auth), also a CHECK of relevance_labels
BEIR_QRELS_HEADER = ("query-id", "corpus-id", "score")


class LabelSource(enum.StrEnum):
    FEEDBACK = "feedback"  # a caller graded a result (FeedbackService.GradeResult)
    IMPORT = "import"  # loaded from a qrels file (rag labels import)


class QrelsFormat(enum.StrEnum):
    BEIR = "beir"
    TREC = "trec"


@dataclass(frozen=True)
class LabelledQuery:
    """One query of a tenant with every graded document: what training and evaluation read.

    ``key`` is the query's external id when it has one (a BEIR query id), else ``#<row id>``
    (external ids never start with ``#``, so the two cannot collide);
    ``grades`` maps a document id (a UUID string, as the API returns it) to its grade.
    """

    key: str
    text: str
    grades: Mapping[str, int]


@dataclass(frozen=True)
class RelevanceLabel:
    """One stored label: the latest grade of a document for a query, with who gave it and when."""

    query_key: str
    query_text: str
    document_id: str
    chunk_id: int | None
    grade: int
    labelled_by: str
    source: LabelSource
    labelled_at: datetime


@dataclass(frozen=True)
class Qrel:
    """A line of a qrels file: the corpus id is the benchmark's, not yet a document of ours."""

    query_id: str
    corpus_id: str
    grade: int


@dataclass(frozen=True)
class ImportCounts:
    """What an import stored: queries (new or updated) and labels (new or regraded)."""

    queries: int
    labels: int


def validate_grade(value: int) -> int:
    """``value`` when it is a grade; :class:`InvalidInput` naming the field ``grade`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_GRADE <= value <= MAX_GRADE:
        raise InvalidInput(
            f"must be an integer between {MIN_GRADE} (not relevant) and {MAX_GRADE} (perfect), got {value!r}",
            field="grade",
        )
    return value


def validate_labeller(value: str) -> str:
    """Who gave a label: a username, or a name for an import (1..128 characters)."""
    if not value.strip() or len(value) > MAX_LABELLER_CHARS or "\x00" in value:
        raise InvalidInput(
            f"must be 1-{MAX_LABELLER_CHARS} characters without NUL, got {value[:40]!r}", field="labelled_by"
        )
    return value


def validate_external_id(value: str) -> str:
    if (
        not value
        or value != value.strip()
        or len(value) > MAX_EXTERNAL_ID_CHARS
        or "\x00" in value
        or value.startswith("#")
    ):
        raise InvalidInput(
            f"must be 1-{MAX_EXTERNAL_ID_CHARS} characters without surrounding spaces or NUL, not starting"
            f" with # (the keys of queries without an id), got {value!r}",
            field="external_id",
        )
    return value


def parse_qrels(text: str, *, source: str, qrels_format: QrelsFormat) -> list[Qrel]:
    """The labels of a qrels file's ``text`` (``source`` names the file in errors)."""
    if qrels_format is QrelsFormat.BEIR:
        return parse_beir_qrels(text, source=source)
    return parse_trec_qrels(text, source=source)


def parse_beir_qrels(text: str, *, source: str) -> list[Qrel]:
    """BEIR's ``qrels/<split>.tsv``: the header line, then ``query-id<TAB>corpus-id<TAB>score``."""
    lines = _lines(text)
    first = next(lines, None)
    if first is None:
        raise InvalidInput(f"{source}: empty; a BEIR qrels file starts with the header {_beir_header()}")
    number, header = first
    if tuple(cell.strip() for cell in header.split("\t")) != BEIR_QRELS_HEADER:
        raise InvalidInput(
            f"{source} line {number}: expected the header {_beir_header()}, got {header[:80]!r}"
        )
    qrels = []
    for number, line in lines:
        cells = [cell.strip() for cell in line.split("\t")]
        if len(cells) != 3:
            raise InvalidInput(
                f"{source} line {number}: expected 3 tab-separated fields "
                f"(query-id, corpus-id, score), got {len(cells)}"
            )
        qrels.append(_qrel(cells[0], cells[1], cells[2], source, number))
    return qrels


def parse_trec_qrels(text: str, *, source: str) -> list[Qrel]:
    """TREC qrels: ``qid iteration docid grade`` a line, whitespace-separated (iteration ignored)."""
    qrels = []
    for number, line in _lines(text):
        cells = line.split()
        if len(cells) != 4:
            raise InvalidInput(
                f"{source} line {number}: expected 4 whitespace-separated fields "
                f"(qid, iteration, docid, grade), got {len(cells)}"
            )
        qrels.append(_qrel(cells[0], cells[2], cells[3], source, number))
    return qrels


def parse_queries_jsonl(text: str, *, source: str) -> dict[str, str]:
    """BEIR's ``queries.jsonl``: ``{"_id": ..., "text": ...}`` a line; other keys are ignored."""
    queries: dict[str, str] = {}
    for number, line in _lines(text):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{source} line {number}: not a JSON object ({exc.msg})") from None
        if not isinstance(item, dict):
            raise InvalidInput(f"{source} line {number}: expected a JSON object with _id and text")
        query_id, query_text = item.get("_id"), item.get("text")
        if not isinstance(query_id, str | int) or isinstance(query_id, bool):
            raise InvalidInput(f"{source} line {number}: _id must be a string, got {query_id!r}")
        if not isinstance(query_text, str):
            raise InvalidInput(f"{source} line {number}: text must be a string, got {query_text!r}")
        _add_query(queries, str(query_id), query_text, source, number)
    return queries


def parse_queries_tsv(text: str, *, source: str) -> dict[str, str]:
    """``qid<TAB>text`` a line (the text may hold further tabs)."""
    queries: dict[str, str] = {}
    for number, line in _lines(text):
        query_id, tab, query_text = line.partition("\t")
        if not tab:
            raise InvalidInput(f"{source} line {number}: expected qid<TAB>text, found no tab")
        _add_query(queries, query_id, query_text, source, number)
    return queries


def parse_queries(text: str, *, source: str) -> dict[str, str]:
    """Queries by id: JSON lines when ``source`` ends in ``.jsonl`` or ``.json``, else ``qid<TAB>text``."""
    if source.lower().endswith((".jsonl", ".json")):
        return parse_queries_jsonl(text, source=source)
    return parse_queries_tsv(text, source=source)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.lstrip("\ufeff") if number == 1 else line


def _beir_header() -> str:
    return "<TAB>".join(BEIR_QRELS_HEADER)


def _qrel(query_id: str, corpus_id: str, grade: str, source: str, number: int) -> Qrel:
    where = f"{source} line {number}"
    for name, identifier in (("query id", query_id), ("corpus id", corpus_id)):
        if not identifier:
            raise InvalidInput(f"{where}: the {name} is empty")
        if len(identifier) > MAX_EXTERNAL_ID_CHARS:
            raise InvalidInput(f"{where}: the {name} is longer than {MAX_EXTERNAL_ID_CHARS} characters")
    try:
        value = int(grade)
    except ValueError:
        raise InvalidInput(f"{where}: the grade {grade!r} is not an integer") from None
    if not MIN_GRADE <= value <= MAX_GRADE:
        raise InvalidInput(
            f"{where}: the grade {value} is outside {MIN_GRADE}..{MAX_GRADE} "
            f"(0 not relevant, 1 relevant, 2 highly relevant, 3 perfect); fix or drop the line"
        )
    return Qrel(query_id, corpus_id, value)


def _add_query(queries: dict[str, str], query_id: str, query_text: str, source: str, number: int) -> None:
    where = f"{source} line {number}"
    query_id = query_id.strip()
    if not query_id:
        raise InvalidInput(f"{where}: the query id is empty")
    if len(query_id) > MAX_EXTERNAL_ID_CHARS:
        raise InvalidInput(f"{where}: the query id is longer than {MAX_EXTERNAL_ID_CHARS} characters")
    try:
        query_text = validate_query(query_text)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{where}: the text of query {query_id!r} {exc.message.removeprefix('query: ')}"
        ) from None
    if query_id in queries and queries[query_id] != query_text:
        raise InvalidInput(f"{where}: query {query_id!r} appears twice with different texts")
    queries[query_id] = query_text


@dataclass(frozen=True)
class SourceTemplate:
    """How a benchmark's corpus id names a document: its ``source_uri`` is the template with
    ``{id}`` filled in (``beir://scifact/{id}.txt``; the default ``{id}`` is the id itself)."""

    template: str = "{id}"

    def __post_init__(self) -> None:
        if self.template.count("{id}") != 1:
            raise InvalidInput(
                f"must hold {{id}} exactly once, got {self.template!r}", field="source_template"
            )

    @property
    def prefix(self) -> str:
        return self.template.partition("{id}")[0]

    def source_uri(self, corpus_id: str) -> str:
        return self.template.replace("{id}", corpus_id)

    def corpus_id(self, source_uri: str) -> str | None:
        """The id that fills the template to ``source_uri``; None when nothing does."""
        prefix, _, suffix = self.template.partition("{id}")
        if len(source_uri) <= len(prefix) + len(suffix):
            return None
        if not (source_uri.startswith(prefix) and source_uri.endswith(suffix)):
            return None
        return source_uri[len(prefix) : len(source_uri) - len(suffix)]
