"""Developer tools of the project: the reproducible build of the Lambda artifacts (``python -m tools.build``)."""
