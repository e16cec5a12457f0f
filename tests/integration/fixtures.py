"""Session fixtures for tests that need the embedded local cloud; import them into a conftest to use them.

``tests/integration/conftest.py`` imports them; another test folder (``tests/browser``) can do the same::

    from tests.integration.fixtures import embedded_stack, local_cloud  # noqa: F401

``local_cloud``
    A fresh embedded local cloud server (moto + local Lambda executor) on a free port of 127.0.0.1, with its
    state in a temporary directory; a user's ``make local-up`` on port 4566 is left alone. Yields a
    :class:`LocalCloud` (``endpoint``, ``region``, ``port``, ``state_dir``, ``client(service)``). Asynchronous
    retries wait 0.2 s and 0.4 s instead of 1 s and 2 s.

``embedded_stack``
    The real stack on that server: ``python -m tools.build`` builds ``build/lambda.zip`` and
    ``build/pillow-layer.zip`` (skipped when they are newer than their sources), then Terraform
    (``terraform/envs/local`` through ``localcloud.tf``) applies it, once per test session. Yields a
    :class:`StackInfo` with ``endpoint``, ``region`` and ``outputs`` (``source_bucket``, ``destination_bucket``,
    ``failed_bucket``, ``sns_topic_arn``, ``notifications_queue_url``, ``function_name``, ``log_group_name``,
    ``dlq_url``, ...), plus ``client(service)``. The stack is destroyed at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcloud import procs

REGION = "eu-west-1"
TEST_RETRY_DELAYS = "0.2,0.4"


def make_client(endpoint: str, region: str, service: str) -> Any:
    """Return a boto3 client for ``service`` against ``endpoint`` with the local cloud's test credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120),
    )


@dataclass
class LocalCloud:
    """A running embedded local cloud server started for the test session."""

    endpoint: str
    region: str
    port: int
    state_dir: Path
    pid: int

    def client(self, service: str) -> Any:
        """Return a boto3 client for ``service`` on this server."""
        return make_client(self.endpoint, self.region, service)


@dataclass
class StackInfo:
    """The applied stack: where it is and its Terraform outputs."""

    endpoint: str
    region: str
    outputs: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """Return a boto3 client for ``service`` against the stack's endpoint."""
        return make_client(self.endpoint, self.region, service)


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Start an embedded local cloud server on a free port for the session; stop it (and its workers) after."""
    state_dir = tmp_path_factory.mktemp("localcloud")
    port = procs.free_port()
    handle = procs.start_server(port, state_dir, retry_delays=TEST_RETRY_DELAYS)
    try:
        yield LocalCloud(handle.endpoint, REGION, port, state_dir, handle.pid)
    finally:
        procs.stop_group(handle.pid)
