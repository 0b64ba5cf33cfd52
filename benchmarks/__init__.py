"""Benchmarks: scripts that measure Tandem side by side. Not tests; run them by hand."""
