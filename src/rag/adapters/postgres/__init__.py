"""PostgreSQL adapters (psycopg 3): pools and repositories. SQL always with bound parameters."""
