"""``rag labels import|list|export``: a tenant's relevance labels, to and from qrels files.

``import`` reads a BEIR (``qrels/<split>.tsv``) or TREC qrels file and its queries (BEIR's
``queries.jsonl``, or ``qid<TAB>text`` lines), and stores each label whose corpus id names a
document of the tenant: the document whose ``source_uri`` is ``--source-template`` with ``{id}``
filled in (``beir://scifact/{id}.txt``), or whose id is the corpus id itself (a UUID). Labels
naming no document are counted and skipped; when none names one, nothing is stored and the
command fails. Everything is stored in one transaction.

``export`` writes the tenant's labels back as qrels plus the queries file, naming each document
by the template's id when its source matches the template, else by its UUID.
"""

from __future__ import annotations

import argparse
import getpass
import json
import uuid
from collections.abc import Mapping
from pathlib import Path

from rag.cli.database import command_pool
from rag.cli.table import print_table
from rag.core.auth import validate_tenant
from rag.core.errors import InvalidInput, RagError
from rag.core.labels import (
    BEIR_QRELS_HEADER,
    LabelledQuery,
    QrelsFormat,
    SourceTemplate,
    parse_qrels,
    parse_queries,
    validate_labeller,
)
from rag.settings import Settings

FORMATS = [f.value for f in QrelsFormat]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    labels = sub.add_parser("labels", help="relevance labels: import, list, export")
    actions = labels.add_subparsers(dest="labels_action", required=True)
    template_help = "a document's source_uri with {id} for the corpus id (default {id})"

    load = actions.add_parser("import", help="load a qrels file and its queries into a tenant")
    load.add_argument("--tenant", required=True)
    load.add_argument("--qrels", type=Path, required=True, help="BEIR qrels/<split>.tsv or TREC qrels")
    load.add_argument("--queries", type=Path, required=True, help="queries.jsonl, or qid<TAB>text lines")
    load.add_argument("--format", choices=FORMATS, default=QrelsFormat.BEIR.value, help="of --qrels")
    load.add_argument("--source-template", default="{id}", help=template_help)
    load.add_argument("--labelled-by", help="who the labels are from (default: the system user)")
    load.set_defaults(handler=_import)

    list_ = actions.add_parser("list", help="list a tenant's labels, the latest first")
    list_.add_argument("--tenant", required=True)
    list_.add_argument("--limit", type=int, default=50)
    list_.set_defaults(handler=_list)

    export = actions.add_parser("export", help="write a tenant's labels as qrels and queries")
    export.add_argument("--tenant", required=True)
    export.add_argument("--format", choices=FORMATS, default=QrelsFormat.BEIR.value)
    export.add_argument(
        "--out",
        type=Path,
        required=True,
        help="beir: a folder (queries.jsonl, qrels/<split>.tsv); trec: a folder or the qrels file",
    )
    export.add_argument("--split", default="train", help="beir: the qrels file's name (default train)")
    export.add_argument("--source-template", default="{id}", help=template_help)
    export.set_defaults(handler=_export)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from rag.adapters.postgres.documents import DocumentRepository
    from rag.adapters.postgres.labels import LabelRepository

    tenant = validate_tenant(args.tenant)
    template = SourceTemplate(args.source_template)
    labelled_by = validate_labeller(args.labelled_by or getpass.getuser())
    qrels = parse_qrels(
        _read(args.qrels, "--qrels"), source=str(args.qrels), qrels_format=QrelsFormat(args.format)
    )
    queries = parse_queries(_read(args.queries, "--queries"), source=str(args.queries))
    with command_pool(settings, "rag-labels") as pool:
        documents = _documents_by_corpus_id(
            DocumentRepository(pool).source_uris(tenant=tenant, prefix=""), template
        )
        mapped = [(q.query_id, documents[q.corpus_id], q.grade) for q in qrels if q.corpus_id in documents]
        unmapped = sorted({q.corpus_id for q in qrels if q.corpus_id not in documents})
        if not mapped:
            raise RagError(
                f"none of the {len(qrels)} labels of {args.qrels} names a document of tenant {tenant} "
                f"(source_uri {template.template!r} or a document id); check --tenant and --source-template"
            )
        counts = LabelRepository(pool).import_labels(tenant, queries, mapped, labelled_by=labelled_by)
    print(f"imported {counts.labels} labels of {counts.queries} queries into tenant {tenant}")
    if unmapped:
        print(
            f"unmapped: {len(qrels) - len(mapped)} labels naming {len(unmapped)} corpus ids with no "
            f"document of the tenant (e.g. {', '.join(unmapped[:3])})"
        )
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from rag.adapters.postgres.labels import LabelRepository

    tenant = validate_tenant(args.tenant)
    if args.limit < 1:
        raise InvalidInput("must be at least 1", field="--limit")
    with command_pool(settings, "rag-labels") as pool:
        labels = LabelRepository(pool).list(tenant, limit=args.limit)
    rows = [("QUERY", "GRADE", "DOCUMENT", "SOURCE", "BY", "LABELLED", "TEXT")]
    for label in labels:
        text = label.query_text if len(label.query_text) <= 60 else label.query_text[:57] + "..."
        rows.append(
            (
                label.query_key,
                str(label.grade),
                label.document_id,
                label.source.value,
                label.labelled_by,
                label.labelled_at.strftime("%Y-%m-%d %H:%M"),
                " ".join(text.split()),
            )
        )
    print_table(rows)
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from rag.adapters.postgres.documents import DocumentRepository
    from rag.adapters.postgres.labels import LabelRepository

    tenant = validate_tenant(args.tenant)
    template = SourceTemplate(args.source_template)
    with command_pool(settings, "rag-labels") as pool:
        labelled = LabelRepository(pool).labelled_queries(tenant)
        sources = DocumentRepository(pool).source_uris(tenant=tenant, prefix="")
    if not labelled:
        raise RagError(f"tenant {tenant} has no labels to export")
    names = {
        str(doc_id): _export_name(template.corpus_id(uri), str(doc_id)) for uri, doc_id in sources.items()
    }
    by_uuid = {doc for q in labelled for doc in q.grades if names.get(doc, doc) == doc}
    if QrelsFormat(args.format) is QrelsFormat.BEIR:
        qrels_path, queries_path = args.out / "qrels" / f"{args.split}.tsv", args.out / "queries.jsonl"
        qrels_text = _beir_qrels(labelled, names)
        queries_text = "".join(json.dumps({"_id": q.key, "text": q.text}) + "\n" for q in labelled)
    else:
        if args.out.suffix and not args.out.is_dir():
            qrels_path, queries_path = args.out, args.out.with_name(f"{args.out.stem}.queries.tsv")
        else:
            qrels_path, queries_path = args.out / "qrels.txt", args.out / "queries.tsv"
        qrels_text = "".join(
            f"{q.key} 0 {names.get(doc, doc)} {grade}\n"
            for q in labelled
            for doc, grade in sorted(q.grades.items())
        )
        queries_text = "".join(f"{q.key}\t{' '.join(q.text.split())}\n" for q in labelled)
    _write(qrels_path, qrels_text)
    _write(queries_path, queries_text)
    labels = sum(len(q.grades) for q in labelled)
    print(f"exported {labels} labels of {len(labelled)} queries to {qrels_path} and {queries_path}")
    if by_uuid:
        print(
            f"{len(by_uuid)} documents named by their id: "
            f"their source_uri does not match {template.template!r}"
        )
    return 0


def _documents_by_corpus_id(
    sources: Mapping[str, uuid.UUID], template: SourceTemplate
) -> dict[str, uuid.UUID]:
    """Corpus id -> document: through the template, and every document's own id as a string."""
    documents = {str(doc_id): doc_id for doc_id in sources.values()}
    for uri, doc_id in sources.items():
        corpus_id = template.corpus_id(uri)
        if corpus_id is not None:
            documents[corpus_id] = doc_id
    return documents


def _export_name(corpus_id: str | None, document_id: str) -> str:
    """The template's id for a document, or its UUID when there is none or it holds whitespace
    (the qrels formats separate fields by whitespace)."""
    if corpus_id is None or any(character.isspace() for character in corpus_id):
        return document_id
    return corpus_id


def _beir_qrels(labelled: list[LabelledQuery], names: Mapping[str, str]) -> str:
    lines = ["\t".join(BEIR_QRELS_HEADER)]
    for query in labelled:
        lines += [
            f"{query.key}\t{names.get(doc, doc)}\t{grade}" for doc, grade in sorted(query.grades.items())
        ]
    return "\n".join(lines) + "\n"


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RagError(f"{option} {path}: no such file") from None
    except UnicodeDecodeError:
        raise RagError(f"{option} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise RagError(f"{option} {path}: cannot be read ({exc.strerror})") from None


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RagError(f"--out: cannot write {path} ({exc.strerror})") from None
