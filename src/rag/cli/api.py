"""``rag login|upload|docs|search|ask|admin``: the gRPC API from a terminal.

The server address is ``--api`` or ``RAG_API_URL`` (default the local stack's 127.0.0.1:28051).
``rag login`` keeps the tokens in ``~/.config/rag-system/credentials.json`` (mode 600); later
commands refresh the access token from it when it has expired.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import grpc

from rag.client import RagClient, Tokens, grounding_lines
from rag.core.errors import InvalidInput
from rag.proto.rag.v1 import common_pb2

DEFAULT_API = "127.0.0.1:28051"
STATUSES = [name.removeprefix("DOCUMENT_STATUS_").lower() for name in common_pb2.DocumentStatus.keys()][1:]  # noqa: SIM118


def credentials_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "rag-system" / "credentials.json"


def _save(target: str, tokens: Tokens) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"target": target, "access": tokens.access, "refresh": tokens.refresh}, handle)


def _client(args: argparse.Namespace) -> RagClient:
    target = args.api or os.environ.get("RAG_API_URL") or DEFAULT_API
    tokens = None
    if os.environ.get("RAG_TOKEN"):
        tokens = Tokens(os.environ["RAG_TOKEN"])
    elif credentials_path().exists():
        saved = json.loads(credentials_path().read_text())
        if saved.get("target") == target:
            tokens = Tokens(saved["access"], saved.get("refresh", ""))
    return RagClient(target, tokens=tokens)


def _with_refresh(client: RagClient, call: Callable[[], int]) -> int:
    try:
        return call()
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.UNAUTHENTICATED or not (client.tokens and client.tokens.refresh):
            raise
    client.refresh()
    assert client.tokens is not None
    _save(
        client.channel._channel.target().decode() if hasattr(client.channel, "_channel") else "",
        client.tokens,
    )
    return call()


def _login(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass("password: ")
    with _client(args) as client:
        response = client.login(args.username, password)
        assert client.tokens is not None
        _save(args.api or os.environ.get("RAG_API_URL") or DEFAULT_API, client.tokens)
    print(f"logged in as {args.username} (role {response.role}, tenant {response.tenant})")
    return 0


def _upload(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for name in args.files:
            path = Path(name)
            if not path.is_file():
                raise InvalidInput(f"{name} is not a file", field="files")

            def progress(sent: int, total: int, label: str = path.name) -> None:
                width = 30
                done = int(width * sent / total) if total else width
                sys.stderr.write(
                    f"\r{label[:30]:<30} [{'#' * done}{'.' * (width - done)}] {sent / 2**20:7.2f} MiB"
                )
                sys.stderr.flush()

            def send(path: Path = path, progress: Callable[[int, int], None] = progress) -> int:
                return _print_upload(client.upload(path, progress=progress))

            _with_refresh(client, send)
    return 0


def _print_upload(response: object) -> int:
    sys.stderr.write("\n")
    document = response.document  # type: ignore[attr-defined]
    note = " (same content as before: deduplicated)" if response.deduplicated else ""  # type: ignore[attr-defined]
    run = response.ingestion_run_id or "deferred to the sweeper"  # type: ignore[attr-defined]
    status = common_pb2.DocumentStatus.Name(document.status)[16:].lower()
    print(f"{document.id}  {status}{note}  ingestion: {run}")
    return 0


def _docs(args: argparse.Namespace) -> int:
    status = common_pb2.DocumentStatus.Value(f"DOCUMENT_STATUS_{args.status.upper()}") if args.status else 0
    with _client(args) as client:

        def show() -> int:
            for doc in client.documents(status=status):  # type: ignore[arg-type]
                state = common_pb2.DocumentStatus.Name(doc.status)[16:].lower()
                reason = f"  ({doc.error_reason})" if doc.error_reason else ""
                print(f"{doc.id}  {state:<11} {doc.size_bytes:>10}  {doc.title or doc.source_uri}{reason}")
            return 0

        return _with_refresh(client, show)


def _search(args: argparse.Namespace) -> int:
    with _client(args) as client:

        def show() -> int:
            response = client.search(args.query, top_k=args.top_k, mode=args.mode, rerank=args.rerank)
            for rank, hit in enumerate(response.results, start=1):
                where = f"p.{hit.page} " if hit.page else ""
                print(f"{rank:>2}. [{hit.score:.4f}] {hit.document_title} {where}(chunk {hit.chunk_id})")
                print(f"    {hit.text[:240].replace(chr(10), ' ')}")
            cached = " (cached)" if response.cache_hit else ""
            print(f"-- {len(response.results)} results in {response.took_ms:.1f} ms{cached}")
            return 0

        return _with_refresh(client, show)


def _ask(args: argparse.Namespace) -> int:
    with _client(args) as client:

        def stream() -> int:
            grounding = None
            summary = None
            events = client.ask(
                args.question,
                top_k=args.top_k,
                max_tokens=args.max_tokens,
                strict=args.strict,
                quotes_only=args.quotes_only,
            )
            for event in events:
                kind = event.WhichOneof("event")
                if kind == "token":
                    sys.stdout.write(event.token)
                    sys.stdout.flush()
                elif kind == "grounding":
                    grounding = event.grounding
                elif kind == "summary":
                    summary = event.summary
            print()
            if grounding is not None:
                print()
                print("\n".join(grounding_lines(grounding)))
            if summary is not None:
                print(f"\n-- {summary.usage.completion_tokens} tokens, {summary.took_ms / 1000:.1f} s")
            return 0

        return _with_refresh(client, stream)


def _admin(args: argparse.Namespace) -> int:
    with _client(args) as client:

        def run() -> int:
            if args.admin_action == "stats":
                stats = client.stats()
                counts = {
                    common_pb2.DocumentStatus.Name(c.status)[16:].lower(): c.count
                    for c in stats.documents_by_status
                }
                print(f"documents {stats.documents_total} {counts}")
                print(f"chunks {stats.chunks_total}  queries {stats.queries_total}")
                print(f"queries in the last 24 h {stats.queries_last_24h}")
                print(f"cache hit rate {stats.cache_hit_rate:.0%}  index {stats.embedding_model_version}")
            else:
                print(dict(client.cleanup(args.days_old).deleted))
            return 0

        return _with_refresh(client, run)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def command(
        name: str, help_text: str, handler: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("--api", help=f"gRPC address (default RAG_API_URL or {DEFAULT_API})")
        parser.set_defaults(client_handler=handler)
        return parser

    login = command("login", "log in to the gRPC API and keep the tokens", _login)
    login.add_argument("username")
    login.add_argument("--password-stdin", action="store_true")
    upload = command("upload", "upload files for ingestion", _upload)
    upload.add_argument("files", nargs="+")
    docs = command("docs", "list your documents", _docs)
    docs.add_argument("--status", choices=STATUSES)
    search = command("search", "hybrid search", _search)
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "fulltext"], default="hybrid")
    search.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rerank with the cross-encoder (default: when a reranker serves)",
    )
    ask = command("ask", "ask a question; the answer streams, then each sentence's support", _ask)
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=5)
    ask.add_argument("--max-tokens", type=int, default=200)
    ask.add_argument("--strict", action="store_true", help="drop the sentences the sources do not support")
    ask.add_argument("--quotes-only", action="store_true", help="answer with quoted source sentences only")
    admin = command("admin", "system statistics and cleanup", _admin)
    admin.add_argument("admin_action", choices=["stats", "cleanup"])
    admin.add_argument("--days-old", type=int, default=30)
