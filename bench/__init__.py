"""Benchmarks: push (SSE) against polling, and the limits of one server process.

Run with `uv run --group bench python -m bench.run [--quick]`; results go to
docs/benchmarks.md and bench/results/. Nothing here is imported by the project.
"""
