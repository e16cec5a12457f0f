"""image-compressor: the pure JPEG compression core and its AWS glue (the CLI is ``image_compressor_cli``, in cli/).

Its modules, pure core and AWS glue, and the job of each: docs/architecture.md ("Modules").
"""

from image_compressor.result import Result, Status

__all__ = ["Result", "Status"]
