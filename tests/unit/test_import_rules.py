"""The layout's import rules, read from the source with ``ast`` (nothing is imported):

- ``rag.core`` imports no framework or driver (the standard library, numpy, pydantic and
  ``rag.core`` itself only);
- ``rag.adapters`` imports no service (``rag.ingestion``, ``rag.retrieval``, ``rag.generation``,
  ``rag.operations``);
- the services typed by the ports (intake, pipeline, sources, retrieval, generation) import no
  adapter: they are handed their collaborators, typed by ``rag.core.ports``; the few imports
  :data:`ADAPTER_IMPORTS` names, each with its reason, are the exceptions;
- ``rag.models`` (the runtimes Triton runs) imports no model operation, adapter or service;
- ``rag.training`` imports no adapter, service or model operation (its search and labels are ports);
- nothing outside ``rag.stack``, ``rag.cli``, ``bench`` and ``tests`` imports ``rag.stack`` (the
  development supervisor), except what :data:`STACK_IMPORTERS` names with its reason.

Every import counts, also one inside a function or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "rag": ROOT / "src" / "rag",
    "grpc_services": ROOT / "grpc_services",
    "dags": ROOT / "dags",
    "plugins": ROOT / "plugins",
    "triton_models": ROOT / "triton_models",
}
GENERATED = ("rag.proto.rag.",)

# What rag.core may import besides the standard library and itself.
CORE_MAY_IMPORT = {"numpy", "pydantic"}
# Frameworks and drivers, named so that a failure says what was imported (rag.core's rule is an
# allow-list: anything else outside the standard library fails as well).
FRAMEWORKS = {
    "airflow",
    "alembic",
    "argon2",
    "boto3",
    "botocore",
    "diskcache",
    "fastapi",
    "grpc",
    "grpc_health",
    "grpc_reflection",
    "httpx",
    "jwt",
    "mlflow",
    "prometheus_client",
    "psycopg",
    "psycopg_pool",
    "pgvector",
    "redis",
    "requests",
    "sentence_transformers",
    "starlette",
    "torch",
    "transformers",
    "triton_python_backend_utils",
    "tritonclient",
    "uvicorn",
}
# The model runtimes run inside Triton's Python backend: torch and the core, nothing of the
# operations around them (MLflow, the database, the services).
RUNTIMES_MAY_NOT_IMPORT = (
    "rag.modelops",
    "rag.adapters",
    "rag.ingestion",
    "rag.retrieval",
    "rag.generation",
    "rag.operations",
    "rag.stack",
    "mlflow",
    "psycopg",
)
SERVICES = ("rag.ingestion", "rag.retrieval", "rag.generation", "rag.operations")
STACK_MAY_BE_IMPORTED_BY = ("rag.stack", "rag.cli")
PORT_TYPED = (
    "rag.ingestion.intake",
    "rag.ingestion.pipeline",
    "rag.ingestion.sources",
    "rag.retrieval.service",
    "rag.generation.service",
)
# Known exceptions to the ports rule, each with its reason; like STACK_IMPORTERS, only shrinks.
_POOL_DEFAULTS = "RetrievalService builds the PostgreSQL ports it is not given from pool="
ADAPTER_IMPORTS: dict[tuple[str, str], str] = {
    ("rag.retrieval.service", "rag.adapters.postgres.history.QueryHistory"): _POOL_DEFAULTS,
    ("rag.retrieval.service", "rag.adapters.postgres.search.SearchRepository"): _POOL_DEFAULTS,
    ("rag.retrieval.service", "rag.adapters.postgres.search_versions.SearchVersions"): _POOL_DEFAULTS,
}
# Known exceptions to the rag.stack rule, each with its reason; an entry that no longer
# imports rag.stack fails the test too, so the list only shrinks.
STACK_IMPORTERS: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted and absolute
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def imports_of(module: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import in ``source``, relative ones made absolute from ``module``; ``from m import
    a, b`` counts as importing ``m.a`` and ``m.b``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                source = f"{prefix}.{node.module}" if node.module else prefix
            else:
                source = node.module or ""
            # Each name may be a module of its own (`from rag import stack`); a name that is
            # not still lies within the module it comes from, which is what the rules ask.
            for alias in node.names:
                yield Import(module, f"{source}.{alias.name}", node.lineno)


def all_imports() -> list[Import]:
    found: list[Import] = []
    for package, root in SOURCES.items():
        for path in sorted(root.rglob("*.py")):
            name = _module_name(package, root, path)
            if name.startswith(GENERATED):
                continue
            found.extend(imports_of(name, path.read_text(), is_package=path.name == "__init__.py"))
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _top(name: str) -> str:
    return name.split(".")[0]


def core_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        if not _within(imp.module, "rag.core") or _within(imp.target, "rag.core"):
            continue
        top = _top(imp.target)
        if top in FRAMEWORKS:
            bad.append(f"{imp}: a framework or driver")
        elif top == "rag":
            bad.append(f"{imp}: the core imports nothing of rag outside rag.core")
        elif top not in sys.stdlib_module_names and top not in CORE_MAY_IMPORT and top != "__future__":
            bad.append(f"{imp}: not the standard library, numpy or pydantic")
    return bad


def adapter_violations(imports: list[Import]) -> list[str]:
    return [
        f"{imp}: an adapter imports a service"
        for imp in imports
        if _within(imp.module, "rag.adapters") and any(_within(imp.target, s) for s in SERVICES)
    ]


def port_violations(imports: list[Import]) -> list[str]:
    return [
        f"{imp}: a service typed by the ports imports an adapter"
        for imp in imports
        if imp.module in PORT_TYPED
        and _within(imp.target, "rag.adapters")
        and (imp.module, imp.target) not in ADAPTER_IMPORTS
    ]


def runtime_violations(imports: list[Import]) -> list[str]:
    return [
        f"{imp}: a model runtime imports model operations, an adapter or a service"
        for imp in imports
        if _within(imp.module, "rag.models") and any(_within(imp.target, p) for p in RUNTIMES_MAY_NOT_IMPORT)
    ]


# The training room gets its search and label store as ports: no adapter, no service, no
# model operation (rag.modelops assembles it).
TRAINING_MAY_NOT_IMPORT = ("rag.adapters", "rag.modelops", "rag.stack", "mlflow", "psycopg", *SERVICES)


def training_violations(imports: list[Import]) -> list[str]:
    return [
        f"{imp}: the training room imports an adapter, a service or a model operation"
        for imp in imports
        if _within(imp.module, "rag.training")
        and any(_within(imp.target, p) for p in TRAINING_MAY_NOT_IMPORT)
    ]


def stack_violations(imports: list[Import]) -> list[str]:
    return [
        f"{imp}: only rag.stack, rag.cli, bench and tests may import rag.stack"
        for imp in imports
        if _within(imp.target, "rag.stack")
        and not any(_within(imp.module, p) for p in STACK_MAY_BE_IMPORTED_BY)
        and imp.module not in STACK_IMPORTERS
    ]


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    found = all_imports()
    assert len({i.module for i in found}) > 100  # the walk found the code base
    return found


def test_core_imports_no_framework_or_driver(imports: list[Import]) -> None:
    assert core_violations(imports) == []


def test_adapters_import_no_service(imports: list[Import]) -> None:
    assert adapter_violations(imports) == []


def test_services_typed_by_the_ports_import_no_adapter(imports: list[Import]) -> None:
    assert port_violations(imports) == []
    found = {(i.module, i.target) for i in imports}
    assert set(ADAPTER_IMPORTS) <= found, "remove the exceptions that no longer apply"


def test_model_runtimes_import_no_operations(imports: list[Import]) -> None:
    assert runtime_violations(imports) == []


def test_the_training_room_imports_no_adapter_service_or_model_operation(imports: list[Import]) -> None:
    assert training_violations(imports) == []
    planted = Import("rag.training.candidates", "rag.adapters.postgres.labels.LabelRepository", 1)
    assert training_violations([planted]) != []


def test_only_the_stack_cli_bench_and_tests_import_the_stack(imports: list[Import]) -> None:
    assert stack_violations(imports) == []


def test_known_exceptions_still_need_their_exception(imports: list[Import]) -> None:
    importers = {i.module for i in imports if _within(i.target, "rag.stack")}
    assert set(STACK_IMPORTERS) <= importers, "remove the exceptions that no longer apply"


@pytest.mark.parametrize(
    ("module", "source", "check", "expected"),
    [
        ("rag.core.x", "import psycopg\n", core_violations, "rag.core.x:1 imports psycopg: a framework"),
        ("rag.core.x", "def f():\n    import grpc.aio\n", core_violations, "imports grpc.aio"),
        ("rag.core.x", "from psycopg import sql\n", core_violations, "imports psycopg.sql"),
        ("rag.core.x", "from rag.adapters import cache\n", core_violations, "outside rag.core"),
        ("rag.core.x", "import yaml\n", core_violations, "not the standard library"),
        ("rag.adapters.x", "from rag.ingestion.intake import Intake\n", adapter_violations, "a service"),
        ("rag.retrieval.service", "from rag.adapters.cache import X\n", port_violations, "an adapter"),
        ("rag.ingestion.pipeline", "import rag.adapters.triton\n", port_violations, "an adapter"),
        ("rag.models.x", "from rag.modelops import packaging\n", runtime_violations, "model operations"),
        ("rag.models.x", "import mlflow\n", runtime_violations, "model operations"),
        ("rag.adapters.postgres.x", "from ...operations import cleanup\n", adapter_violations, "a service"),
        ("grpc_services.x", "from rag.stack.config import StackConfig\n", stack_violations, "rag.stack"),
        ("rag.adapters.x", "from rag import stack\n", stack_violations, "rag.stack"),
    ],
)
def test_each_rule_catches_a_breach(
    module: str, source: str, check: Callable[[list[Import]], list[str]], expected: str
) -> None:
    violations = check(list(imports_of(module, source)))
    assert len(violations) == 1 and expected in violations[0], violations


def test_allowed_imports_pass() -> None:
    core = "import re\nimport numpy as np\nfrom pydantic import BaseModel\nfrom rag.core.errors import X\n"
    assert core_violations(list(imports_of("rag.core.x", core))) == []
    assert adapter_violations(list(imports_of("rag.adapters.x", "from rag.core import errors\n"))) == []
    assert stack_violations(list(imports_of("rag.cli.x", "from rag.stack import stack\n"))) == []
