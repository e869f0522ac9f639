"""Operations: backups, restores, maintenance and cleanup, shared by DAGs and the Admin API."""
