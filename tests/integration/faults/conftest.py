"""A whole stack of the fault tests' own (not the session's): they kill its components with -9.

It starts once for the package (every component, on free ports, like ``make up``), and each
test leaves it healthy for the next: a test that kills a component recovers it with
``LocalStack.up()``, what ``make up`` runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from rag.settings import Settings, load_settings
from rag.stack.config import StackConfig
from rag.stack.stack import LocalStack
from tests.fixtures.stack import free_ports, make_state_dir


@pytest.fixture(scope="package")
def own_stack() -> Iterator[LocalStack]:
    state_dir = make_state_dir("rag-test-faults-")
    local = LocalStack(StackConfig(state_dir=state_dir, ports=free_ports()))
    try:
        local.up()
        yield local
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def own_settings(own_stack: LocalStack) -> Settings:
    return load_settings(own_stack.app_env())
