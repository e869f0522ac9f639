"""Driver errors become the taxonomy's, by kind (the integration tests provoke the real ones)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from rag.adapters.postgres.errors import database_errors, translate
from rag.core.errors import DeadlineExceeded, InvalidInput, RagError, Unavailable


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (pg_errors.QueryCanceled("canceling statement due to statement timeout"), DeadlineExceeded),
        (pg_errors.AdminShutdown("terminating connection due to administrator command"), Unavailable),
        (psycopg.OperationalError("server closed the connection unexpectedly"), Unavailable),
        (PoolTimeout("couldn't get a connection after 30.00 sec"), Unavailable),
        (pg_errors.DeadlockDetected("deadlock detected"), Unavailable),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), InvalidInput),
        (pg_errors.NumericValueOutOfRange("value out of range"), InvalidInput),
        (pg_errors.UntranslatableCharacter("unsupported Unicode escape sequence"), InvalidInput),
    ],
)
def test_each_kind_of_driver_error_has_its_taxonomy_class(error: psycopg.Error, kind: type[RagError]) -> None:
    translated = translate(error)
    assert type(translated) is kind
    with pytest.raises(kind) as excinfo, database_errors():
        raise error
    assert excinfo.value.__cause__ is error


def test_a_data_error_says_what_the_database_refused() -> None:
    message = str(translate(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")))
    assert message.startswith("the database refused a value: PostgreSQL text fields cannot contain NUL")


@pytest.mark.parametrize(
    "error", [pg_errors.UniqueViolation("duplicate key"), pg_errors.UndefinedTable("no such table")]
)
def test_bugs_stay_driver_errors(error: psycopg.Error) -> None:
    assert translate(error) is None
    with pytest.raises(type(error)), database_errors():
        raise error


def test_no_driver_error_is_caught_outside_the_adapters() -> None:
    """Callers see rag.core.errors only: psycopg's error classes stay in rag.adapters."""
    root = Path(__file__).resolve().parents[3]
    pattern = re.compile(
        r"psycopg\.(errors|Error|OperationalError|DataError|IntegrityError|DatabaseError|InterfaceError)\b"
        r"|from psycopg import errors|\bPoolTimeout\b|\bPoolClosed\b"
    )
    adapters = root / "src" / "rag" / "adapters"
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("src/rag", "grpc_services", "plugins", "dags", "bench")
        for path in sorted((root / folder).rglob("*.py"))
        if adapters not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
