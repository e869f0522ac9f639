-- First start of the postgres container: the databases MLflow and Airflow keep their state in,
-- and pgvector in the RAG database (the Alembic migrations, `rag migrate`, create the tables).
CREATE DATABASE mlflow;
CREATE DATABASE airflow;
CREATE EXTENSION IF NOT EXISTS vector;
