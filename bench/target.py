"""The stack a benchmark runs against: its settings, its gRPC address, clients for a tenant.

The stack is the local one (``python -m rag.stack``); ``RAG_STATE_DIR`` or ``--state-dir``
picks another. ``--start`` brings it up when it is not healthy (what ``make bench`` does), and
leaves it running: stopping is ``make down``.
"""

from __future__ import annotations

import argparse
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench import beir
from rag.adapters.tokens import JwtTokens
from rag.client import RagClient, Tokens
from rag.core.auth import Principal, Role
from rag.settings import Settings, load_settings
from rag.stack.config import StackConfig
from rag.stack.secrets import read_env_file
from rag.stack.stack import LocalStack


@dataclass
class Target:
    stack: LocalStack
    settings: Settings

    @property
    def grpc_address(self) -> str:
        return f"{self.stack.config.host}:{self.stack.config.ports.grpc}"

    def client(
        self, tenant: str, username: str | None = None, *, timeout_s: float = 60.0, role: Role = Role.USER
    ) -> RagClient:
        """A gRPC client signed in as a user of ``tenant`` (a fresh username: its own rate-limit bucket)."""
        return client_for(self.grpc_address, self.settings, tenant, username, timeout_s=timeout_s, role=role)


def client_for(
    address: str,
    settings: Settings,
    tenant: str,
    username: str | None = None,
    *,
    timeout_s: float = 60.0,
    role: Role = Role.USER,
) -> RagClient:
    name = username or f"bench-{uuid.uuid4().hex[:8]}"
    token = JwtTokens.from_settings(settings).issue_access(Principal.of(name, tenant, role))
    return RagClient(address, tokens=Tokens(token.token), timeout_s=timeout_s)


def stack_parser(module: str, doc: str | None, *, data_help: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``python -m <module>``, described by the first paragraph of ``doc``, with
    the stack's options and, given ``data_help``, ``--data`` (a BEIR folder, default: the bundled
    SciFact)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=(doc or "").split("\n\n")[0])
    add_arguments(parser)
    if data_help is not None:
        parser.add_argument("--data", type=Path, default=beir.default_data(), help=data_help)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="the stack's state directory (default: RAG_STATE_DIR or .rag/)",
    )
    parser.add_argument("--start", action="store_true", help="start the stack when it is not running")


def connect(
    state_dir: Path | None, *, start: bool, need: tuple[str, ...] = ("postgres", "triton", "api")
) -> Target:
    stack = LocalStack(StackConfig.load(state_dir))
    status = {row.name: row.healthy for row in stack.status() if row.name in need}
    if not all(status.values()):
        down = ", ".join(name for name, ok in status.items() if not ok)
        if not start:
            raise SystemExit(
                f"the stack in {stack.config.state_dir} is not running ({down} down): "
                "run `make up`, or pass --start"
            )
        print(f"starting the stack in {stack.config.state_dir} ({down} down) ...", flush=True)
        stack.up()
    settings = load_settings(read_env_file(stack.env_path))
    return Target(stack, settings)
