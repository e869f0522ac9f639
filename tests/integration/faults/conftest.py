"""A whole stack of the fault tests' own (not the session's): they kill its components with -9.

It starts once for the package (every component, on free ports, like ``make up``), and each
test leaves it healthy for the next: a test that kills a component recovers it with
``LocalStack.up()``, what ``make up`` runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.settings import Settings, load_settings
from rag.stack.stack import LocalStack
from tests.fixtures.stack import private_stack


@pytest.fixture(scope="package")
def own_stack() -> Iterator[LocalStack]:
    with private_stack("rag-test-faults-") as local:
        yield local


@pytest.fixture(scope="package")
def own_settings(own_stack: LocalStack) -> Settings:
    return load_settings(own_stack.app_env())
