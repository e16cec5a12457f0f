"""The function's Powertools Logger (structured JSON) and Metrics (CloudWatch EMF), set up once from env.

``POWERTOOLS_SERVICE_NAME`` names the service (default ``image-compressor``); ``POWERTOOLS_METRICS_NAMESPACE``
names the metric namespace (default ``ImagePipeline``); ``POWERTOOLS_LOG_LEVEL`` (or ``LOG_LEVEL``) sets the level.
"""

from __future__ import annotations

import os
import sys

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

DEFAULT_SERVICE_NAME = "image-compressor"
DEFAULT_METRICS_NAMESPACE = "ImagePipeline"

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE_NAME
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_METRICS_NAMESPACE


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is at the time of the write.

    Lambda reads the log from stdout; looking ``sys.stdout`` up per write (instead of once at import) also lets a
    host that swaps stdout, such as pytest's capture, see the lines.
    """

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


logger = Logger(service=SERVICE_NAME, stream=_CurrentStdout())  # type: ignore[arg-type]
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

__all__ = ["DEFAULT_METRICS_NAMESPACE", "DEFAULT_SERVICE_NAME", "MetricUnit", "logger", "metrics"]
