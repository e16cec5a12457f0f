"""The LocalStack target's docker-compose.yml, checked statically (this machine has no Docker engine to run it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from ops import iammode, launch
from ops.procs import LocalCloudError

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def service() -> dict:
    document = yaml.safe_load(COMPOSE.read_text())
    return document["services"]["localstack"]


def test_the_image_defaults_to_the_last_version_without_an_account(service):
    assert service["image"] == "localstack/localstack:${LOCALSTACK_VERSION:-4.14.0}"


def test_the_auth_token_is_passed_through_and_never_committed(service):
    assert service["environment"]["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"


def test_persistence_is_passed_through_off_by_default_into_the_kept_volume(service):
    assert service["environment"]["PERSISTENCE"] == "${PERSISTENCE:-0}"
    assert "localstack-data:/var/lib/localstack" in service["volumes"]


def test_iam_enforcement_is_passed_through_on_by_default_as_on_the_embedded_cloud(service):
    assert service["environment"]["ENFORCE_IAM"] == "${ENFORCE_IAM:-1}"
    assert service["environment"]["IAM_SOFT_MODE"] == "${IAM_SOFT_MODE:-0}"
    assert iammode.IamSettings().localstack_env() == {"ENFORCE_IAM": "1", "IAM_SOFT_MODE": "0"}


def test_the_services_cover_the_stack(service):
    services = set(service["environment"]["SERVICES"].split(","))
    assert services == {"s3", "lambda", "sns", "sqs", "iam", "logs", "sts", "cloudwatch", "kms"}


def test_lambda_runs_in_docker_through_the_socket(service):
    assert service["environment"]["LAMBDA_EXECUTOR"] == "docker"
    assert "/var/run/docker.sock:/var/run/docker.sock" in service["volumes"]


def test_the_port_is_bound_to_localhost_only(service):
    assert service["ports"] == ["127.0.0.1:${LOCALSTACK_PORT:-4566}:4566"]


def test_the_healthcheck_asks_localstack(service):
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "http://localhost:4566/_localstack/health" in test


def test_docker_compose_config_accepts_the_file():
    # No skip: CI installs Compose (Debian's docker-compose); without a Docker engine `config` still validates.
    try:
        command = launch.compose_command()
    except LocalCloudError as exc:
        pytest.fail(f"{exc}. On Debian/Ubuntu: apt-get install docker-compose (no Docker engine needed for this test)")
    env = {**os.environ, "LOCALSTACK_VERSION": "4.14.0", "LOCALSTACK_AUTH_TOKEN": "", "LOCALSTACK_PORT": "4566"}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert "name" not in yaml.safe_load(COMPOSE.read_text())  # Compose v1 rejects a top-level name
    assert rendered["services"]["localstack"]["image"] == "localstack/localstack:4.14.0"
