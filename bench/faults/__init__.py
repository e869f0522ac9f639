"""The fault matrix (issue 13, item 6): kill each stack component under load, recover it with
``LocalStack.up()``, and measure what was lost, duplicated, left unfinished or answered wrongly.

Reusable pieces (the CI-sized test runs the Triton and PostgreSQL cells on a small corpus):
:func:`bench.faults.cell.run_cell` (one cell, a :class:`~bench.faults.cell.CellResult`),
:mod:`bench.faults.loads` (searches, uploads, health probe), :mod:`bench.faults.inject` (kill a
component by name and signal, recover), :mod:`bench.faults.measure` (the database checks),
:mod:`bench.faults.runs` (the DAG runs and the green-with-unfinished check),
:func:`bench.faults.corpus.scifact` (``documents=20`` for a small corpus).
"""
