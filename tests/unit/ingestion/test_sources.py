"""Which sources a batch ingestion may read (``INGEST_ALLOWED_ROOTS`` / ``_BUCKETS``), and the
path-component boundaries of what a source covers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.core.errors import InvalidInput
from rag.ingestion.sources import Source, SourceItem, SourcePolicy, list_source, parse_source, read_item
from rag.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
BASE_ENV = {
    "DATABASE_URL": "postgresql://rag:pw@127.0.0.1:5432/rag",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "S3_ACCESS_KEY_ID": "k",
    "S3_SECRET_ACCESS_KEY": "s",
    "SECRET_KEY": "x" * 32,
    "JWT_SECRET_KEY": "y" * 32,
}


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """An allowed root with a document, a state directory with a secret, and a folder outside."""
    root, state, outside = tmp_path / "inbox", tmp_path / "state", tmp_path / "outside"
    for folder in (root, state, outside):
        folder.mkdir()
    (root / "a.md").write_text("# A")
    (state / "secrets.env").write_text("JWT_SECRET_KEY=hunter2")
    (outside / "other.md").write_text("# other")
    return {"root": root, "state": state, "outside": outside}


def policy_for(tree: dict[str, Path], *roots: Path, buckets: tuple[str, ...] = ()) -> SourcePolicy:
    return SourcePolicy.from_settings(
        load_settings(
            {
                **BASE_ENV,
                "INGEST_ALLOWED_ROOTS": ",".join(str(r) for r in roots or (tree["root"],)),
                "INGEST_ALLOWED_BUCKETS": ",".join(buckets),
                "RAG_STATE_DIR": str(tree["state"]),
            }
        )
    )


def test_a_path_under_an_allowed_root_is_read(tree: dict[str, Path]) -> None:
    policy = policy_for(tree)
    source = parse_source(str(tree["root"]), policy)
    items = list(list_source(source, None))
    assert [i.name for i in items] == ["a.md"]
    assert read_item(items[0], None, policy) == b"# A"
    assert parse_source(f"file://{tree['root'] / 'a.md'}", policy).kind == "file"


def test_the_state_directory_is_refused_even_under_an_allowed_root(tree: dict[str, Path]) -> None:
    policy = policy_for(tree, tree["root"].parent)  # the root holds the state directory
    with pytest.raises(InvalidInput, match=r"state directory .*\(RAG_STATE_DIR\)"):
        parse_source(str(tree["state"] / "secrets.env"), policy)
    with pytest.raises(InvalidInput, match="RAG_STATE_DIR"):
        parse_source(str(tree["state"]), policy)


def test_the_checkouts_stack_secrets_are_refused_with_the_defaults() -> None:
    policy = SourcePolicy.from_settings(load_settings(BASE_ENV))
    assert policy.roots == ((REPO / "samples").resolve(),)
    for path in (REPO / ".rag" / "secrets.env", REPO / "samples" / ".." / ".rag" / "secrets.env"):
        with pytest.raises(InvalidInput, match="RAG_STATE_DIR"):
            parse_source(str(path), policy)
    with pytest.raises(InvalidInput, match="INGEST_ALLOWED_ROOTS"):
        parse_source(str(REPO / ".env.example"), policy)
    assert parse_source(str(REPO / "samples" / "corpus"), policy).kind == "folder"  # make demo's


def test_dot_dot_out_of_a_root_is_refused(tree: dict[str, Path]) -> None:
    policy = policy_for(tree)
    with pytest.raises(InvalidInput, match=r"source: .* INGEST_ALLOWED_ROOTS \(now: "):
        parse_source(f"{tree['root']}/../outside/other.md", policy)
    with pytest.raises(InvalidInput, match="RAG_STATE_DIR"):
        parse_source(f"{tree['root']}/../state/secrets.env", policy)


def test_a_symlink_out_of_a_root_is_refused_as_source_and_as_file(tree: dict[str, Path]) -> None:
    policy = policy_for(tree)
    (tree["root"] / "escape").symlink_to(tree["outside"])
    (tree["root"] / "secret.md").symlink_to(tree["state"] / "secrets.env")
    with pytest.raises(InvalidInput, match="INGEST_ALLOWED_ROOTS"):
        parse_source(str(tree["root"] / "escape"), policy)
    with pytest.raises(InvalidInput, match="RAG_STATE_DIR"):
        parse_source(str(tree["root"] / "secret.md"), policy)
    # Listed inside the folder, the link is refused where it is read.
    items = {i.name: i for i in list_source(parse_source(str(tree["root"]), policy), None)}
    assert set(items) == {"a.md", "secret.md"}  # a linked folder is not descended into
    with pytest.raises(InvalidInput, match="RAG_STATE_DIR"):
        read_item(items["secret.md"], None, policy)


def test_hidden_files_and_odd_sources_are_refused(tree: dict[str, Path]) -> None:
    policy = policy_for(tree)
    (tree["root"] / ".git").mkdir()
    (tree["root"] / ".git" / "config").write_text("x")
    os.mkfifo(tree["root"] / "pipe")
    with pytest.raises(InvalidInput, match=r"hidden '\.git'"):
        parse_source(str(tree["root"] / ".git" / "config"), policy)
    with pytest.raises(InvalidInput, match="neither a regular file nor a folder"):
        parse_source(str(tree["root"] / "pipe"), policy)
    with pytest.raises(InvalidInput, match="only local paths"):
        parse_source("http://example.com/a.md", policy)
    with pytest.raises(InvalidInput, match="does not exist"):
        parse_source(str(tree["root"] / "nope.md"), policy)
    fifo = SourceItem((tree["root"] / "pipe").as_uri(), "pipe", 0)
    with pytest.raises(InvalidInput, match="not a regular file"):
        read_item(fifo, None, policy)


def test_no_local_roots_refuses_every_path(tree: dict[str, Path]) -> None:
    policy = SourcePolicy.from_settings(load_settings({**BASE_ENV, "INGEST_ALLOWED_ROOTS": ""}))
    with pytest.raises(InvalidInput, match=r"INGEST_ALLOWED_ROOTS \(now: none\)"):
        parse_source(str(tree["root"]), policy)


def test_only_listed_buckets_and_never_the_systems_own(tree: dict[str, Path]) -> None:
    policy = policy_for(tree, buckets=("inbox", "rag-documents"))
    assert parse_source("s3://inbox/team/", policy) == Source("s3", bucket="inbox", prefix="team/")
    with pytest.raises(InvalidInput, match=r"'elsewhere' is not listed in INGEST_ALLOWED_BUCKETS"):
        parse_source("s3://elsewhere/x", policy)
    for own in ("rag-documents", "rag-backups", "rag-models"):
        with pytest.raises(InvalidInput, match="RAG System's own buckets"):
            parse_source(f"s3://{own}/", policy)
    with pytest.raises(InvalidInput, match="INGEST_ALLOWED_BUCKETS"):
        read_item(SourceItem("s3://elsewhere/a.md", "a.md", 1), None, policy)


def test_relative_roots_are_a_configuration_error() -> None:
    from rag.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="INGEST_ALLOWED_ROOTS must list absolute folders"):
        load_settings({**BASE_ENV, "INGEST_ALLOWED_ROOTS": "samples"})


def test_a_source_covers_whole_path_components(tree: dict[str, Path]) -> None:
    policy = policy_for(tree)
    (tree["root"] / "dir").mkdir()
    one = parse_source(str(tree["root"] / "a.md"), policy)
    folder = parse_source(str(tree["root"] / "dir"), policy)
    base = tree["root"].as_uri()
    assert one.covers(f"{base}/a.md")
    assert not one.covers(f"{base}/a.md.bak") and not one.covers(f"{base}/a.md/x")
    assert folder.covers(f"{base}/dir/x.md") and folder.covers(f"{base}/dir/sub/y.md")
    assert not folder.covers(f"{base}/dir2/x.md") and not folder.covers(f"{base}/dir")
    s3 = Source("s3", bucket="b", prefix="docs")
    assert s3.covers("s3://b/docs") and s3.covers("s3://b/docs/x.md")
    assert not s3.covers("s3://b/docs2/x.md") and not s3.covers("s3://b/docs.md")
    assert Source("s3", bucket="b", prefix="").covers("s3://b/anything")
    assert not Source("s3", bucket="b", prefix="").covers("s3://bb/anything")
