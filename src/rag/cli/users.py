"""``rag users add|list|disable|enable|set-role|set-tenant|revoke``: manage the accounts that
log in to the gRPC API.

Passwords never come from the command line (it shows in ``ps`` and shell history): they are
read from a terminal prompt, or with ``--password-stdin`` from the first line of stdin.
Disabling an account, changing its role or tenant, and ``revoke`` end every access and refresh
token it holds, in every API process within a second; the user logs in again.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import IO, TypeVar

from rag.cli.database import command_pool
from rag.cli.table import print_table
from rag.core.auth import Role, parse_role, validate_tenant, validate_username
from rag.core.authentication import validate_password
from rag.core.errors import InvalidInput
from rag.settings import Settings

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="manage API users")
    actions = users.add_subparsers(dest="users_action", required=True)

    add = actions.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", default=Role.USER.value, choices=[r.value for r in Role])
    add.add_argument("--tenant", required=True, help="e.g. acme (lowercase letters, digits, _ and -)")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    add.set_defaults(handler=_add)

    list_ = actions.add_parser("list", help="list users")
    list_.add_argument("--tenant", help="only this tenant's users")
    list_.set_defaults(handler=_list)

    for name, disabled in (("disable", True), ("enable", False)):
        action = actions.add_parser(name, help=f"{name} a user's logins and refreshes")
        action.add_argument("username")
        action.set_defaults(handler=_set_disabled, disabled=disabled)

    set_role = actions.add_parser("set-role", help="change a user's role (ends the user's tokens)")
    set_role.add_argument("username")
    set_role.add_argument("role", choices=[r.value for r in Role])
    set_role.set_defaults(handler=_set_role)

    set_tenant = actions.add_parser("set-tenant", help="move a user to a tenant (ends the user's tokens)")
    set_tenant.add_argument("username")
    set_tenant.add_argument("tenant")
    set_tenant.set_defaults(handler=_set_tenant)

    revoke = actions.add_parser("revoke", help="end every access and refresh token of a user")
    revoke.add_argument("username")
    revoke.set_defaults(handler=_revoke)


def read_password(from_stdin: bool, stdin: IO[str] | None = None) -> str:
    """The new password, from stdin's first line or from a terminal prompt typed twice."""
    stream = stdin or sys.stdin
    if from_stdin:
        password = stream.readline().rstrip("\r\n")
    else:
        if not stream.isatty():
            raise InvalidInput("no terminal to prompt on: pass --password-stdin", field="password")
        password = getpass.getpass("password: ")
        if getpass.getpass("password (again): ") != password:
            raise InvalidInput("the two entries differ", field="password")
    return validate_password(password)


def _add(args: argparse.Namespace, settings: Settings) -> int:
    username = validate_username(args.username)
    tenant = validate_tenant(args.tenant)
    role = parse_role(args.role)
    password = read_password(args.password_stdin)

    async def add() -> None:
        from rag.adapters.passwords import Argon2Passwords

        passwords = Argon2Passwords()
        try:
            password_hash = await passwords.hash(password)
        finally:
            passwords.close()
        user = await _with_users(settings, lambda users: users.add(username, password_hash, role, tenant))
        print(f"added user {user.username!r} (role {user.role.value}, tenant {user.tenant})")

    asyncio.run(add())
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    tenant = validate_tenant(args.tenant) if args.tenant else None
    accounts = asyncio.run(_with_users(settings, lambda users: users.list(tenant)))
    rows = [("USERNAME", "TENANT", "ROLE", "STATUS", "CREATED")]
    for a in accounts:
        created = a.created_at.strftime("%Y-%m-%d %H:%M") if a.created_at else "-"
        rows.append((a.username, a.tenant, a.role.value, "disabled" if a.disabled else "enabled", created))
    print_table(rows)
    return 0


def _set_disabled(args: argparse.Namespace, settings: Settings) -> int:
    username = validate_username(args.username)
    return _change(
        settings,
        lambda users: users.set_disabled(username, args.disabled),
        f"{'disabled' if args.disabled else 'enabled'} user {username!r}",
    )


def _set_role(args: argparse.Namespace, settings: Settings) -> int:
    username, role = validate_username(args.username), parse_role(args.role)
    return _change(
        settings,
        lambda users: users.set_role(username, role),
        f"user {username!r} now has the role {role.value}; the user's tokens were revoked",
    )


def _set_tenant(args: argparse.Namespace, settings: Settings) -> int:
    username, tenant = validate_username(args.username), validate_tenant(args.tenant)
    return _change(
        settings,
        lambda users: users.set_tenant(username, tenant),
        f"user {username!r} moved to tenant {tenant}; the user's tokens were revoked",
    )


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    username = validate_username(args.username)
    return _change(
        settings,
        lambda users: users.revoke_tokens(username),
        f"revoked every token of user {username!r}; the user must log in again",
    )


def _change(settings: Settings, operation: Callable[..., Awaitable[object]], done: str) -> int:
    """Run one change to the accounts, then say ``done``."""
    asyncio.run(_with_users(settings, operation))
    print(done)
    return 0


async def _with_users(settings: Settings, operation: Callable[..., Awaitable[T]]) -> T:
    """Run ``operation(UserRepository)`` over a small pool (Unavailable when PostgreSQL is not up)."""
    from rag.adapters.postgres.users import UserRepository

    pool = await asyncio.to_thread(command_pool, settings, "rag-users")
    try:
        return await operation(UserRepository(pool))
    finally:
        await asyncio.to_thread(pool.close)
