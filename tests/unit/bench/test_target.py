"""bench.target.stack_parser: the options every benchmark against the stack shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import beir
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
