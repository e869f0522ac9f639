"""The schema migrates up, down and up again, on a scratch database of the session's server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from rag import migrations
from rag.stack.components.postgres import Postgres
from rag.stack.stack import LocalStack

pytestmark = pytest.mark.integration

TABLES = {
    "documents",
    "chunks",
    "query_history",
    "users",
    "roles",
    "model_deployments",
    "backups",
    "embedding_indexes",
    "label_queries",
    "relevance_labels",
}


@pytest.fixture
def scratch_url(stack: LocalStack) -> Iterator[str]:
    pg = Postgres(stack.ctx)
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.superuser_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER rag").format(sql.Identifier(name)))
    with psycopg.connect(pg.superuser_dsn(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    url = pg.database_url("rag").rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(pg.superuser_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchall()
    return {r[0] for r in rows}


def test_up_down_up(scratch_url: str) -> None:
    migrations.upgrade(scratch_url)
    assert migrations.current(scratch_url) == migrations.head()
    assert _tables(scratch_url) >= TABLES
    migrations.upgrade(scratch_url)  # idempotent
    assert migrations.current(scratch_url) == migrations.head()

    migrations.downgrade(scratch_url, "base")
    assert migrations.current(scratch_url) is None
    assert _tables(scratch_url) == set()
    with psycopg.connect(scratch_url) as conn:
        leftovers = conn.execute(
            "SELECT typname FROM pg_type WHERE typname = 'document_status'"
            " UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'rag_%'"
        ).fetchall()
    assert leftovers == []

    migrations.upgrade(scratch_url)
    assert _tables(scratch_url) >= TABLES


def test_schema_enforces_the_document_rules(scratch_url: str) -> None:
    migrations.upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        doc = conn.execute(
            "INSERT INTO documents (tenant, source_uri, content_hash, size_bytes) VALUES (%s, %s, %s, %s) RETURNING id",
            ("acme", "s3://b/a.txt", "a" * 64, 10),
        ).fetchone()
        assert doc is not None
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute("UPDATE documents SET status = 'quarantined' WHERE id = %s", (doc[0],))
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(
                "INSERT INTO documents (tenant, source_uri, content_hash, size_bytes) VALUES (%s, %s, %s, %s)",
                ("acme", "s3://b/a.txt", "b" * 64, 11),
            )
        conn.execute(
            "INSERT INTO chunks (document_id, tenant, ordinal, text, char_start, char_end, token_count,"
            " embedding_model_version) VALUES (%s, 'acme', 0, 'Heart disease risk', 0, 18, 4, 'v1')",
            (doc[0],),
        )
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            conn.execute(
                "INSERT INTO chunks (document_id, tenant, ordinal, text, char_start, char_end, token_count,"
                " embedding_model_version) VALUES (%s, 'acme', 0, 'again', 0, 5, 1, 'v1')",
                (doc[0],),
            )
        hit = conn.execute(
            "SELECT count(*) FROM chunks WHERE tsv @@ plainto_tsquery('english', 'diseases')"
        ).fetchone()
        assert hit == (1,)
        conn.execute("DELETE FROM documents WHERE id = %s", (doc[0],))
        assert conn.execute("SELECT count(*) FROM chunks").fetchone() == (0,)


def test_query_history_partitions_by_month_and_keeps_early_rows(scratch_url: str) -> None:
    migrations.upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        parts = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'query_history'::regclass"
            )
        }
        this_month = conn.execute('SELECT to_char(now(), \'"query_history_y"YYYY"m"MM\')').fetchone()
        assert this_month is not None and this_month[0] in parts
        assert "query_history_default" in parts and len(parts) == 3
        # A row for a month without a partition lands in the default partition, then moves.
        conn.execute(
            "INSERT INTO query_history (created_at, tenant, kind, query, latency_ms)"
            " VALUES ('2031-05-02', 'acme', 'search', 'q', 1.5)"
        )
        name = conn.execute("SELECT rag_ensure_query_history_partition('2031-05-01')").fetchone()
        assert name == ("query_history_y2031m05",)
        assert conn.execute("SELECT count(*) FROM query_history_default").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM query_history_y2031m05").fetchone() == (1,)
        again = conn.execute("SELECT rag_ensure_query_history_partition('2031-05-20')").fetchone()
        assert again == ("query_history_y2031m05",)


def test_roles_carry_the_spec_permissions(scratch_url: str) -> None:
    migrations.upgrade(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        roles = {name: set(perms) for name, perms in conn.execute("SELECT name, permissions FROM roles")}
    assert roles["readonly"] == {"documents:read", "query:execute"}
    assert roles["user"] == {
        "documents:read",
        "documents:write",
        "query:execute",
        "generate:execute",
        "labels:write",
    }
    assert "system:admin" in roles["admin"]


def test_unreachable_database_is_one_clear_error() -> None:
    from rag.core.errors import Unavailable

    with pytest.raises(Unavailable, match=r"DATABASE_URL.*Connection refused.*make up"):
        migrations.upgrade("postgresql://rag:x@127.0.0.1:1/rag")


def test_bm25_statistics_move_to_each_tenant_and_version_and_back(scratch_url: str) -> None:
    """0007 backfills per-tenant, per-version BM25 statistics from the postings; its downgrade
    restores 0002's global ones."""
    migrations.upgrade(scratch_url, "0006")
    corpus = {"acme": ["red apples", "green apples and pears"], "beta": ["apples"]}
    with psycopg.connect(scratch_url) as conn:
        for tenant, texts in corpus.items():
            doc = conn.execute(
                "INSERT INTO documents (tenant, source_uri, content_hash, size_bytes) VALUES (%s, %s, %s, 1)"
                " RETURNING id",
                (tenant, f"s3://b/{tenant}.txt", tenant[0] * 64),
            ).fetchone()
            assert doc is not None
            for ordinal, text in enumerate(texts):
                conn.execute(
                    "INSERT INTO chunks (document_id, tenant, ordinal, text, char_start, char_end, token_count,"
                    " embedding_model_version) VALUES (%s, %s, %s, %s, 0, 1, 1, 'v1')",
                    (doc[0], tenant, ordinal, text),
                )
        conn.execute("SELECT rag_index_chunk_terms(array_agg(id)) FROM chunks")
        conn.execute("SELECT rag_refresh_bm25_stats()")

    def per_tenant() -> tuple[dict[tuple[str, str], int], dict[str, tuple[int, int]]]:
        with psycopg.connect(scratch_url) as conn:
            df = conn.execute(
                "SELECT tenant, term, df FROM lexical_term_stats WHERE embedding_model_version = 'v1'"
            )
            lengths = conn.execute("SELECT tenant, n, total_len FROM lexical_corpus_stats")
            return {(t, term): n for t, term, n in df}, {t: (n, total) for t, n, total in lengths}

    migrations.upgrade(scratch_url)
    df, lengths = per_tenant()
    assert df[("acme", "appl")] == 2 and df[("beta", "appl")] == 1 and ("beta", "pear") not in df
    assert lengths == {"acme": (2, 5), "beta": (1, 1)}  # positions: red appl | green appl pear

    migrations.downgrade(scratch_url, "0006")
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute("SELECT df FROM term_stats WHERE term = 'appl'").fetchone() == (3,)
        assert conn.execute("SELECT n, total_len FROM corpus_stats").fetchone() == (3, 6)
    migrations.upgrade(scratch_url)
    assert per_tenant() == (df, lengths)


def test_relevance_labels_migrate_down_to_0012_and_up_again(scratch_url: str) -> None:
    """0013 adds the label tables, documents' unique (tenant, id) and the user role's
    labels:write; its downgrade takes all three away."""

    def state() -> tuple[set[str], list[str], bool]:
        with psycopg.connect(scratch_url) as conn:
            perms = conn.execute("SELECT permissions FROM roles WHERE name = 'user'").fetchone()
            key = conn.execute(
                "SELECT count(*) FROM pg_constraint WHERE conname = 'documents_tenant_id_key'"
            ).fetchone()
        assert perms is not None and key is not None
        return _tables(scratch_url) & {"label_queries", "relevance_labels"}, perms[0], key[0] == 1

    migrations.upgrade(scratch_url)
    tables, perms, key = state()
    assert tables == {"label_queries", "relevance_labels"} and perms.count("labels:write") == 1 and key
    migrations.downgrade(scratch_url, "0012")
    tables, perms, key = state()
    assert tables == set() and "labels:write" not in perms and not key
    migrations.upgrade(scratch_url)
    assert state()[1].count("labels:write") == 1
