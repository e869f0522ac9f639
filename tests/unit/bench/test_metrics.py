"""TREC run files written and read back."""

from __future__ import annotations

from pathlib import Path

from bench.metrics import read_trec_run, write_trec_run


def test_trec_run_files_round_trip(tmp_path: Path) -> None:
    run = {"q1": [("d1", 1.0), ("d2", 0.5)], "q2": [("d3", 0.25)]}
    path = tmp_path / "run.trec"
    write_trec_run(path, run, "tag")
    assert path.read_text().splitlines()[0] == "q1 Q0 d1 1 1.000000 tag"
    assert read_trec_run(path) == run
