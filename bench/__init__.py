"""Benchmarks of the compression pipeline: bytes at equal SSIM, speed, memory and end-to-end latency.

``python -m bench`` (``make bench``) runs everything and writes ``bench/results/latest.json``, ``report.md`` and
PNG plots; ``python -m bench --quick`` (``make bench-quick``) runs a smaller version in under five minutes.
See ``docs/bench.md``.

Modules
-------
corpus
    The photographs (bundled with scikit-image, re-encoded as camera-like q95 JPEGs) and the 12/24 MP upscales.
metrics
    Luma SSIM, the lowest-quality search, medians and percentiles, bytes ratios.
encoders
    The baseline (libjpeg-turbo via Pillow, no optimize, no progressive), the seed's method and the candidate
    encoders compared in the report.
quality
    Metrics 1-2: bytes at equal SSIM and SSIM of our default output against the source.
speed
    Metric 3 (compress() against a bare decode+encode) and metric 5 (peak RSS of a 24 MP compress()).
e2e
    Metrics 4 and 6 on the embedded local cloud: upload-to-destination latency and a burst of uploads.
plots, report
    PNG plots drawn with Pillow, and ``report.md``.
"""
