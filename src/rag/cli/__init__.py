"""``rag``: the RAG System command line.

Settings come from the environment (deployment-guide names); ``--env-file`` adds the variables
of a file such as the local stack's ``.rag/stack.env`` (the environment wins on conflicts).
Every expected failure prints one line (``error: ...``) and exits 2; nothing prints a traceback.

It is an entry point: it may import anything of rag, the local stack included (its secrets file,
and `make demo`'s driver, :mod:`rag.cli.demo`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import grpc

from rag.cli import api, labels, models, users
from rag.core.errors import RagError
from rag.settings import Settings, load_settings
from rag.stack.secrets import read_env_file

Handler = Callable[[argparse.Namespace, Settings], int]


def _config_check(args: argparse.Namespace, settings: Settings) -> int:
    print("settings OK:")
    for name, value in settings.model_dump().items():
        shown = "********" if "SECRET" in name or "PASSWORD" in name else value
        if name in {"DATABASE_URL", "REDIS_URL"}:
            shown = _redact_url(str(value))
        print(f"  {name}={shown}")
    return 0


def _redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:****@{host}"


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from rag import migrations

    if args.revision_action == "downgrade":
        migrations.downgrade(settings.DATABASE_URL, args.target)
    else:
        migrations.upgrade(settings.DATABASE_URL, args.target)
    print(f"database at revision {migrations.current(settings.DATABASE_URL)} (head {migrations.head()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="RAG System command line")
    parser.add_argument(
        "--env-file", type=Path, help="read settings from this file too (e.g. .rag/stack.env)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="check the settings")
    config.add_argument("action", choices=["check"])
    config.set_defaults(handler=_config_check)

    migrate = sub.add_parser("migrate", help="migrate the RAG database schema")
    migrate.add_argument("revision_action", choices=["upgrade", "downgrade"], nargs="?", default="upgrade")
    migrate.add_argument("target", nargs="?", default=None)
    migrate.set_defaults(handler=_migrate)

    users.register(sub)
    api.register(sub)
    models.register(sub)
    labels.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "target", "x") is None:
        args.target = "base" if args.revision_action == "downgrade" else "head"
    try:
        client_handler = getattr(args, "client_handler", None)
        if client_handler is not None:  # API commands need no server settings
            try:
                return int(client_handler(args))
            except grpc.RpcError as exc:
                print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
                return 1
        environ = dict(os.environ)
        if args.env_file is not None:
            if not args.env_file.exists():
                raise RagError(f"--env-file {args.env_file} does not exist (run `make up` to create it)")
            environ = read_env_file(args.env_file) | environ
        settings = load_settings(environ)
        handler: Handler = args.handler
        return handler(args, settings)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
