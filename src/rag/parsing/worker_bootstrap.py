"""Imported first by the parser pool's fork server, so its workers never re-run the parent's main.

multiprocessing prepares each worker by importing the parent's ``__main__`` again (from its path,
or its module name), so that functions defined there can be unpickled. Parser workers only run
functions of :mod:`rag.parsing`, and the parent can be any program: in an Airflow task it is the
``airflow`` console script, whose import in a fresh interpreter fails (the task runner hides the
metadata database's URL from tasks), and every worker died before its first document.

Importing this module inside the fork server (its command line is ``python -c``, with
``multiprocessing.forkserver`` loaded) makes the workers it forks skip that step. Anywhere else
the import changes nothing.
"""

from __future__ import annotations

import sys


def _skip_parent_main(*_args: object) -> None:
    """The parent's ``__main__`` is not needed: workers run module-level functions only."""


def _in_fork_server() -> bool:
    return sys.argv == ["-c"] and "multiprocessing.forkserver" in sys.modules


if _in_fork_server():
    import multiprocessing.spawn as _spawn

    setattr(_spawn, "_fixup_main_from_path", _skip_parent_main)  # noqa: B010 (private, by design)
    setattr(_spawn, "_fixup_main_from_name", _skip_parent_main)  # noqa: B010
