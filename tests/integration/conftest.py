"""Integration tests run against the embedded local cloud; the fixtures live in ``fixtures.py`` (reusable)."""

from tests.integration.fixtures import embedded_stack, local_cloud  # noqa: F401
