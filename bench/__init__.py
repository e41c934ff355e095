"""Benchmarks: ``python -m bench.<name>`` prints a table and writes JSON under build/bench/."""
