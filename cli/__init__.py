"""``image_compressor_cli``: the ``image-compressor`` command, compressing local files with the function's own core.

Not part of the function package: it imports :mod:`image_compressor` (core, settings, result) like any client and
adds what only a terminal needs (rich). ``python -m image_compressor_cli`` is the same as ``image-compressor``.
"""
