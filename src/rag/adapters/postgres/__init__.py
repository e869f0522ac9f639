"""PostgreSQL adapters (psycopg 3): pools, repositories, LISTEN connections and tools.

The only place SQL is written: every statement with bound parameters. ``pool`` builds the
blocking pools (checked on checkout, quick UNAVAILABLE while the server is down),
``errors`` maps psycopg's exceptions to :mod:`rag.core.errors`, and each repository owns the
statements of one table family (documents, with their claims and chunk rows in modules of
their own, search, history, users, deployments, backups, ...). ``listening`` keeps LISTEN
connections alive for the caches that follow the database. It may import the core,
:mod:`rag.settings` and the rest of :mod:`rag.adapters`.
"""
