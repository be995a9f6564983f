"""Benchmarks and soak runs against real servers (``python -m loadtests``); never part of the test suite's timing."""
