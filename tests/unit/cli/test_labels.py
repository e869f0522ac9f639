"""How ``rag labels`` names documents: corpus ids through the source template, UUIDs otherwise."""

from __future__ import annotations

import uuid

from rag.cli.labels import _beir_qrels, _documents_by_corpus_id, _export_name
from rag.core.labels import LabelledQuery, SourceTemplate, parse_beir_qrels

D1, D2 = uuid.uuid4(), uuid.uuid4()


def test_corpus_ids_map_through_the_template_and_by_document_id() -> None:
    sources = {"beir://scifact/4983.txt": D1, "file:///notes/a b.txt": D2}
    documents = _documents_by_corpus_id(sources, SourceTemplate("beir://scifact/{id}.txt"))
    assert documents == {"4983": D1, str(D1): D1, str(D2): D2}


def test_exported_names_are_template_ids_without_whitespace_else_uuids() -> None:
    assert _export_name("4983", str(D1)) == "4983"
    assert _export_name(None, str(D1)) == str(D1)
    assert _export_name("a b", str(D2)) == str(D2)  # the qrels formats split on whitespace


def test_exported_beir_qrels_parse_back() -> None:
    labelled = [LabelledQuery("q1", "text", {str(D1): 2, str(D2): 0}), LabelledQuery("7", "t", {str(D2): 3})]
    text = _beir_qrels(labelled, {str(D1): "4983"})
    rows = [(q.query_id, q.corpus_id, q.grade) for q in parse_beir_qrels(text, source="x")]
    assert sorted(rows) == sorted([("q1", "4983", 2), ("q1", str(D2), 0), ("7", str(D2), 3)])
