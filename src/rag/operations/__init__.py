"""Operations: backups, restore drills, maintenance, cleanup and health checks.

The same code runs from the Airflow DAGs (backup_database, restore_drill, maintenance) and the
Admin API. It may import the core, the adapters, :mod:`rag.migrations` and :mod:`rag.settings`
(and grpc's health client, to check the API); SQL stays in :mod:`rag.adapters.postgres`.
"""
