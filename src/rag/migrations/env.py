"""Alembic environment: online migrations only, one transaction per migration."""

from __future__ import annotations

import sqlalchemy
from alembic import context

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set by rag.migrations"
engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
