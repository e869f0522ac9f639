"""Benchmarks that print numbers and ratios (see README, "Benchmarks")."""
