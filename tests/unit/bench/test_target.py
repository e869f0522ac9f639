"""bench.target.stack_parser: the options every benchmark against the stack shares."""

from __future__ import annotations

import argparse
import types
from pathlib import Path
from typing import Any

import pytest

from bench import beir, quality
from bench.target import stack_parser


def test_the_parser_names_the_module_and_takes_the_stack_options() -> None:
    parser = stack_parser(
        "bench.example", "Measure an example.\n\nDetails nobody reads.", data_help="BEIR folder"
    )

    args = parser.parse_args(["--state-dir", "/tmp/stack", "--start"])

    assert parser.prog == "python -m bench.example"
    assert parser.description == "Measure an example."
    assert (args.state_dir, args.start) == (Path("/tmp/stack"), True)
    assert args.data == beir.default_data()
    assert parser.parse_args(["--data", "/data/scifact"]).data == Path("/data/scifact")


def test_without_data_help_there_is_no_data_option() -> None:
    parser = stack_parser("bench.example", None)

    assert parser.parse_args([]).start is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "/data/scifact"])


def test_ingested_target_loads_connects_then_ingests(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, object]] = []
    dataset: Any = object()
    target: Any = types.SimpleNamespace(settings="settings")

    def load(path: Path) -> Any:
        calls.append(("load", path))
        return dataset

    def connect(state_dir: Path, *, start: bool) -> Any:
        calls.append(("connect", (state_dir, start)))
        return target

    def ensure_ingested(settings: object, data: object) -> tuple[str, dict[str, str]]:
        calls.append(("ingest", (settings, data)))
        return "t1", {}

    monkeypatch.setattr(beir, "load", load)
    monkeypatch.setattr(quality, "connect", connect)
    monkeypatch.setattr(quality, "ensure_ingested", ensure_ingested)
    args = argparse.Namespace(data=Path("/data/scifact"), state_dir=Path("/tmp/stack"), start=True)

    found: tuple[Any, ...] = quality.ingested_target(args)

    assert found == (dataset, target, "t1")
    assert calls == [
        ("load", Path("/data/scifact")),
        ("connect", (Path("/tmp/stack"), True)),
        ("ingest", ("settings", dataset)),
    ]
