"""Users in PostgreSQL: the repository, the `rag users` command line and the roles table."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import argon2
import psycopg
import pytest

from rag.adapters.postgres.pool import create_pool
from rag.adapters.postgres.users import UserRepository
from rag.cli import main as rag_cli
from rag.core.auth import ROLE_PERMISSIONS, Role
from rag.core.errors import AlreadyExists, InvalidInput, NotFound
from rag.settings import Settings
from rag.stack.stack import LocalStack
from tests.fixtures.grpc_server import EventLoopThread

pytestmark = pytest.mark.integration

CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def users(grpc_loop: EventLoopThread, settings: Settings) -> Iterator[UserRepository]:
    with create_pool(settings, min_size=1, name="test-users") as pool:
        yield UserRepository(pool)


def test_roles_table_matches_the_code(db: psycopg.Connection) -> None:
    rows: dict[str, list[str]] = dict(db.execute("SELECT name, permissions FROM roles").fetchall())
    assert {name: set(perms) for name, perms in rows.items()} == {
        role.value: {p.value for p in perms} for role, perms in ROLE_PERMISSIONS.items()
    }


def test_add_get_list_disable(grpc_loop: EventLoopThread, users: UserRepository) -> None:
    tenant = unique("t")
    name = unique()
    added = grpc_loop.run(users.add(name, CHEAP.hash("pw-123456"), Role.READONLY, tenant))
    assert (added.username, added.tenant, added.role, added.disabled) == (name, tenant, Role.READONLY, False)
    assert added.created_at is not None
    fetched = grpc_loop.run(users.get(name))
    assert fetched == added
    assert CHEAP.verify(fetched.password_hash, "pw-123456")
    other = unique()
    grpc_loop.run(users.add(other, CHEAP.hash("x" * 8), Role.USER, tenant))
    assert [u.username for u in grpc_loop.run(users.list(tenant))] == sorted([name, other])
    assert {name, other} <= {u.username for u in grpc_loop.run(users.list())}
    grpc_loop.run(users.set_disabled(name, True))
    assert grpc_loop.run(users.get(name)).disabled  # type: ignore[union-attr]
    grpc_loop.run(users.set_password_hash(name, "new-hash"))
    assert grpc_loop.run(users.get(name)).password_hash == "new-hash"  # type: ignore[union-attr]
    assert grpc_loop.run(users.get(unique())) is None


def test_repository_errors_are_taxonomy_errors(grpc_loop: EventLoopThread, users: UserRepository) -> None:
    name = unique()
    grpc_loop.run(users.add(name, "h", Role.USER, "acme"))
    with pytest.raises(AlreadyExists, match=f"the user '{name}' exists already"):
        grpc_loop.run(users.add(name, "h", Role.USER, "acme"))
    with pytest.raises(InvalidInput, match=r"^tenant: "):
        grpc_loop.run(users.add(unique(), "h", Role.USER, "Bad Tenant"))
    with pytest.raises(InvalidInput, match=r"^username: "):
        grpc_loop.run(users.add("bad name; drop table users", "h", Role.USER, "acme"))
    with pytest.raises(NotFound, match="no user named"):
        grpc_loop.run(users.set_disabled(unique(), True))


@pytest.fixture
def cli(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = rag_cli(["--env-file", str(stack.env_path), "users", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_add_list_disable_enable(cli: Any, db: psycopg.Connection) -> None:
    tenant, name = unique("t"), unique()
    code, out, _ = cli(
        "add", name, "--role", "readonly", "--tenant", tenant, "--password-stdin", stdin="s3cret-pw\n"
    )
    assert code == 0
    assert out == f"added user '{name}' (role readonly, tenant {tenant})\n"
    stored = db.execute("SELECT password_hash, role FROM users WHERE username = %s", (name,)).fetchone()
    assert stored is not None
    assert stored[1] == "readonly"
    assert stored[0].startswith("$argon2id$")
    assert "s3cret-pw" not in stored[0]
    argon2.PasswordHasher().verify(stored[0], "s3cret-pw")

    code, out, _ = cli("list", "--tenant", tenant)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["USERNAME", "TENANT", "ROLE", "STATUS", "CREATED"]
    assert row.split()[:4] == [name, tenant, "readonly", "enabled"]

    assert cli("disable", name)[:2] == (0, f"disabled user '{name}'\n")
    assert cli("list", "--tenant", tenant)[1].splitlines()[1].split()[3] == "disabled"
    assert cli("enable", name)[:2] == (0, f"enabled user '{name}'\n")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--tenant", "acme", "--password-stdin"],
            "short\n",
            "error: password: must be 8 to 1024 characters",
        ),
        (["--tenant", "acme"], "", "error: password: no terminal to prompt on: pass --password-stdin"),
        (["--tenant", "Not Valid", "--password-stdin"], "long-enough\n", "error: tenant: must be"),
    ],
)
def test_cli_add_refuses_bad_input_in_one_line(cli: Any, args: list[str], stdin: str, message: str) -> None:
    code, out, err = cli("add", unique(), *args, stdin=stdin)
    assert code == 2
    assert out == ""
    assert err.startswith(message)
    assert len(err.splitlines()) == 1


def test_cli_reports_duplicates_and_unknown_users(cli: Any) -> None:
    name = unique()
    assert cli("add", name, "--tenant", "acme", "--password-stdin", stdin="long-enough\n")[0] == 0
    code, _, err = cli("add", name, "--tenant", "acme", "--password-stdin", stdin="long-enough\n")
    assert (code, err) == (2, f"error: the user '{name}' exists already\n")
    code, _, err = cli("disable", unique("ghost"))
    assert code == 2
    assert err.startswith("error: no user named")


def test_cli_never_takes_the_password_from_argv(cli: Any) -> None:
    with pytest.raises(SystemExit):
        cli("add", unique(), "--tenant", "acme", "--password", "s3cret-pw")
