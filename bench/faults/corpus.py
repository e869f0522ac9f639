"""What a cell ingests: SciFact abstracts made unique with a nonce, as files in a fresh folder
under ``INGEST_ALLOWED_ROOTS`` (what the ``ingest_documents`` DAG reads), plus search queries
and the texts the upload stream sends."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import beir
from rag.settings import Settings

SEARCH_TENANT = "faults-search"
SEARCH_DOCUMENTS = 50


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: list[tuple[str, str]]  # (file name, text), texts unique to this corpus
    queries: list[str]
    upload_texts: list[str]
    search_texts: list[tuple[str, str]]  # (source URI, text): the searchers' tenant, same every run


def scifact(documents: int, nonce: str, data: Path | None = None) -> Corpus:
    """The first ``documents`` SciFact abstracts (and the next ones as upload texts, shortened)."""
    dataset = beir.load(data or beir.default_data())
    ids = list(dataset.corpus)
    if len(ids) < documents:
        raise SystemExit(f"{dataset.path} has {len(ids)} documents, fewer than the {documents} asked for")
    files = [
        (f"{n:06d}.txt", f"{dataset.document_text(d)}\n\n[{nonce}]") for n, d in enumerate(ids[:documents])
    ]
    rest = ids[documents : documents + 200] or ids[:200]
    uploads = [dataset.document_text(d)[:1500] for d in rest]
    seed = [(f"beir://{dataset.name}/{d}.txt", dataset.document_text(d)) for d in ids[:SEARCH_DOCUMENTS]]
    return Corpus(dataset.name, files, list(dataset.queries.values()) or ["cancer"], uploads, seed)


def ensure_search_tenant(settings: Settings, corpus: Corpus) -> str:
    """The searchers' tenant, ``SEARCH_TENANT``, holding ``corpus.search_texts`` indexed
    (ingested in this process once; later calls find them): a cell's own tenant is empty when
    its loads start, and Search on an empty index answers FAILED_PRECONDITION without
    embedding anything."""
    from bench.indexing import ingest_texts, ingestion

    with ingestion(settings) as ingest:
        counts = ingest.documents.counts_by_status(tenant=SEARCH_TENANT)
        if counts.get("indexed", 0) + counts.get("quarantined", 0) < len(corpus.search_texts):
            ingest_texts(corpus.search_texts, tenant=SEARCH_TENANT, ingestion=ingest, batch=64)
    return SEARCH_TENANT


def write_folder(settings: Settings, corpus: Corpus, tenant: str) -> Path:
    """A fresh folder inside the first allowed root holding the corpus's files."""
    if not settings.INGEST_ALLOWED_ROOTS:
        raise SystemExit("the DAG reads files from INGEST_ALLOWED_ROOTS: the stack's settings list none")
    root = Path(settings.INGEST_ALLOWED_ROOTS[0])
    folder = Path(tempfile.mkdtemp(prefix=f"{tenant}-", dir=root)).resolve()
    folder.chmod(0o755)  # the Airflow workers may run as another user
    for name, text in corpus.documents:
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
