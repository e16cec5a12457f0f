"""image-compressor: the pure JPEG compression core, its AWS glue and its CLI."""

from image_compressor.result import Result, Status

__all__ = ["Result", "Status"]
