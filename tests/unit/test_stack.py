"""ops.stack: one Stack, one resolve() for local and AWS with messages that say what to run, one client factory.

The paths that reach a running local cloud are in tests/integration/test_stack_live.py (unit tests open no
connections).
"""

from __future__ import annotations

import json
from pathlib import Path

import botocore.exceptions as bx
import pytest

from ops import stack as stacks
from ops import stackfile
from ops.stack import INTERACTIVE, OPERATION, Stack, StackError, resolve
from tests.stacks import write_stack_file

OUTPUTS = {name: f"x-{name}" for name in stackfile.REQUIRED_OUTPUTS}


def test_an_unknown_target_names_both(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="unknown target 'prod'.*TARGET=local.*TARGET=aws"):
        resolve("prod", state_dir=tmp_path)


def test_no_local_stack_says_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="no local stack is running .*`make local-up`.*TARGET=aws"):
        resolve("local", state_dir=tmp_path)


def test_an_unreadable_stack_file_says_to_take_the_stack_down(tmp_path: Path) -> None:
    (tmp_path / stackfile.STATE_FILE).write_text('{"version": 99}')
    with pytest.raises(StackError, match="make local-down"):
        resolve("local", state_dir=tmp_path)


def test_no_aws_stack_says_to_deploy_and_no_stack_at_all_names_both_ways(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="no AWS stack: .*`make deploy-aws`.*TARGET=local"):
        resolve("aws", state_dir=tmp_path, aws_root=tmp_path / "aws", env={})
    with pytest.raises(StackError, match="no stack found: .*`make local-up`.*`make deploy-aws`"):
        resolve(None, state_dir=tmp_path, aws_root=tmp_path / "aws", env={})


def test_a_stack_file_resolves_without_probing_and_a_missing_output_is_named(tmp_path: Path) -> None:
    write_stack_file(tmp_path, "ministack", "http://localhost:1", OUTPUTS | {"batch_bucket": None}, "eu-central-1")

    stack = resolve(None, state_dir=tmp_path, env={}, probe=False, required=stackfile.REQUIRED_OUTPUTS)

    assert (stack.target, stack.backend, stack.region, stack.endpoint) == (
        "local",
        "ministack",
        "eu-central-1",
        "http://localhost:1",
    )
    assert stack.is_local and stack.label == "MiniStack" and "batch_bucket" not in stack.outputs
    assert stack.stack_file == str(tmp_path / stackfile.STATE_FILE)
    with pytest.raises(StackError, match="outputs lack no_such_output: apply it again .*make local-up"):
        resolve("local", state_dir=tmp_path, probe=False, required=("function_name", "no_such_output"))
    with pytest.raises(StackError, match="has no output 'dlq_url'.*make local-up"):
        Stack(target="local", backend="embedded", region="eu-west-1", outputs={}).output("dlq_url")


def test_an_aws_stack_file_takes_its_profile_and_region_from_the_environment(tmp_path: Path) -> None:
    path = write_stack_file(tmp_path, "aws", None, OUTPUTS, region="")

    stack = resolve(None, stack_file=path, env={"AWS_PROFILE": "prod", "AWS_REGION": "us-east-2"}, probe=True)

    assert (stack.target, stack.endpoint, stack.profile, stack.region) == ("aws", None, "prod", "us-east-2")
    assert not stack.is_local and stack.apply_command == "make deploy-aws"


def test_a_stack_survives_its_json_and_hashes_without_its_outputs(tmp_path: Path) -> None:
    write_stack_file(tmp_path, "embedded", "http://localhost:4566", OUTPUTS, hot_reload_dir="/src/lambda")
    stack = resolve("local", state_dir=tmp_path, probe=False)

    again = Stack.from_json(stack.to_json())

    assert again == stack and hash(again) == hash(stack)
    assert json.loads(stack.to_json())["hot_reload_dir"] == "/src/lambda"


def test_clients_are_made_once_per_stack_service_and_policy_with_the_policy_s_retries() -> None:
    stacks.clear_clients()
    here = Stack(target="local", backend="embedded", region="eu-west-1", endpoint="http://127.0.0.1:9")
    there = Stack(target="local", backend="embedded", region="eu-west-1", endpoint="http://127.0.0.1:10")

    s3 = here.client("s3", INTERACTIVE)

    assert here.client("s3", INTERACTIVE) is s3
    assert here.client("s3", OPERATION) is not s3 and there.client("s3", INTERACTIVE) is not s3
    assert s3.meta.config.retries["total_max_attempts"] == 3 and s3.meta.config.connect_timeout == 3.0
    assert s3.meta.config.s3 == {"addressing_style": "path"} and s3.meta.endpoint_url == "http://127.0.0.1:9"
    credentials = s3._request_signer._credentials  # the local cloud's fixed keys, never the user's
    assert (credentials.access_key, credentials.secret_key) == ("test", "test")
    stacks.clear_clients()


def test_an_unknown_aws_profile_is_a_stack_error_that_names_it() -> None:
    stack = Stack(target="aws", backend="aws", region="eu-west-1", profile="no-such-profile-here")
    with pytest.raises(StackError, match="AWS_PROFILE='no-such-profile-here' is not in your AWS config"):
        stack.client("s3")


def test_an_error_s_code_and_not_found_are_read_in_one_place() -> None:
    def error(code: str) -> bx.ClientError:
        return bx.ClientError({"Error": {"Code": code, "Message": "m"}}, "HeadObject")

    assert [stacks.is_not_found(error(code)) for code in ("404", "NoSuchKey", "NotFound")] == [True] * 3
    assert not stacks.is_not_found(error("AccessDenied")) and stacks.error_code(error("AccessDenied")) == "AccessDenied"
    assert stacks.error_code(bx.ClientError({}, "HeadObject")) == ""
