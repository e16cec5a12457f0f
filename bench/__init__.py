"""Benchmarks of the compression pipeline: bytes at equal SSIM, speed, memory and end-to-end latency.

``python -m bench`` (``make bench``) runs everything and writes ``bench/results/latest.json``, ``report.md`` and
PNG plots; ``python -m bench --quick`` (``make bench-quick``) runs a smaller version in under five minutes.
See ``docs/bench.md``.

Its modules and the job of each: docs/architecture.md ("Modules"; checked against the tree by
tests/unit/test_architecture.py).
"""
