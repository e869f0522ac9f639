"""The RAG database schema, versioned with Alembic (plain SQL migrations).

``upgrade(url)`` runs on every ``make up`` and is idempotent; ``downgrade(url, "base")`` removes
everything the migrations created.

It imports alembic, sqlalchemy and the core (for the shared constants the schema uses).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from rag.core.errors import ConfigurationError, Unavailable

HERE = Path(__file__).parent


def sqlalchemy_url(database_url: str) -> str:
    """DATABASE_URL (postgresql://...) with the psycopg 3 driver SQLAlchemy needs."""
    scheme, _, rest = database_url.partition("://")
    if scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
        raise ConfigurationError("DATABASE_URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


def _config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    # ConfigParser interpolation would eat '%' in passwords.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def _check_reachable(database_url: str) -> None:
    """Turn a connection failure into one line that names DATABASE_URL and the fix."""
    engine = sqlalchemy.create_engine(sqlalchemy_url(database_url), connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        parts = urlsplit(database_url)
        reason = _reason(str(exc.orig) if exc.orig else str(exc))
        raise Unavailable(
            f"cannot connect to PostgreSQL at {parts.hostname}:{parts.port or 5432} "
            f"(DATABASE_URL, database {parts.path.lstrip('/')!r}): {reason}. "
            "Start the stack with `make up` or fix DATABASE_URL."
        ) from None
    finally:
        engine.dispose()


def _reason(message: str) -> str:
    """The useful part of a libpq error (``... failed: Connection refused`` -> that reason)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in lines:
        if "failed:" in line:
            return line.rsplit("failed:", 1)[1].strip().rstrip(".")
    return lines[0].rstrip(".") if lines else "unknown error"


def upgrade(database_url: str, revision: str = "head") -> None:
    _check_reachable(database_url)
    command.upgrade(_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    _check_reachable(database_url)
    command.downgrade(_config(database_url), revision)


def current(database_url: str) -> str | None:
    _check_reachable(database_url)
    engine = sqlalchemy.create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    script = ScriptDirectory.from_config(_config("postgresql://x@localhost/x"))
    revision = script.get_current_head()
    assert revision is not None
    return revision
