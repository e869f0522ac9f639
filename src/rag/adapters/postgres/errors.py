"""psycopg's errors translated into :mod:`rag.core.errors`, once, at the adapter's edge.

Every pool of :mod:`rag.adapters.postgres.pool` applies :func:`database_errors` around each
borrowed connection, so a repository never sees (and no caller outside the adapters ever
imports) a driver error of these kinds:

- statement timeout (``QueryCanceled``) -> :class:`DeadlineExceeded`;
- lost, refused or shut-down connections (``OperationalError``: ``AdminShutdown``, a closed
  socket, ``PoolTimeout``, ...) -> :class:`Unavailable`;
- a value PostgreSQL refuses (``DataError``: a NUL in text, a number out of range, ...) ->
  :class:`InvalidInput`.

Anything else (a constraint a repository did not expect, an SQL mistake) is a bug and stays
as it is. A repository that expects a constraint violation catches it inside the ``with``
block, before this translation sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from rag.core.errors import DeadlineExceeded, InvalidInput, RagError, Unavailable


def translate(exc: psycopg.Error) -> RagError | None:
    """The taxonomy error for ``exc``; ``None`` for a driver error that is a bug."""
    if isinstance(exc, pg_errors.QueryCanceled):
        return DeadlineExceeded(
            "the database query ran past its statement timeout (DATABASE_STATEMENT_TIMEOUT_MS); "
            "retry later or narrow the request"
        )
    if isinstance(exc, PoolTimeout):
        return Unavailable("no database connection was free or reachable in time; retry later")
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable("the database connection was lost or refused; retry later")
    if isinstance(exc, psycopg.DataError):
        text = exc.diag.message_primary or str(exc)
        reason = text.splitlines()[0] if text.strip() else type(exc).__name__
        return InvalidInput(f"the database refused a value: {reason}; correct it and retry")
    return None


@contextmanager
def database_errors() -> Iterator[None]:
    """Re-raise the driver errors of the block as :mod:`rag.core.errors` (see the module doc)."""
    try:
        yield
    except psycopg.Error as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc
