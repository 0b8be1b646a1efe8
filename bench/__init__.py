"""Benchmarks: programs that print tables (BENCHMARK.md). Not part of the installed package."""
