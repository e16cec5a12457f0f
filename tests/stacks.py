"""Helpers of the tests that run real processes: handles of the embedded local cloud and stack, boto3 clients,
the environment for ``python -m ops``, a bounded poll, and the stack's clean-up checks.

The fixtures that start these (``local_cloud``, ``embedded_stack``) live in ``tests/conftest.py`` and start every
process through :mod:`ops.launch`, as ``make`` and the bench do.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localcloud import faults
from ops import defaults, procs, stackfile, statedir
from ops.stack import Policy, Stack

PROJECT_ROOT = defaults.ROOT
REGION = defaults.DEFAULT_REGION
TEST_RETRY_DELAYS = "0.2,0.4"
# Longer than ops.terraform's wait for another tflocal run in the same Terraform root (900 s) plus an apply, so a
# busy root ends in tflocal's own error message (which names the run holding it), not in a bare timeout here.
UP_TIMEOUT_S = 1800
DOWN_TIMEOUT_S = 120
DESTROY_TIMEOUT_S = 600
# A destroy whose remaining resources are the buckets, and whose buckets' objects stay as they are this long, is
# stuck emptying a force_destroy bucket (a healthy destroy deletes a bucket's objects in a second or two).
DESTROY_STALL_S = 20.0


#: The tests' clients: one retry (a busy server under four test workers), long reads (large bodies, slow faults).
TEST_POLICY = Policy("tests", retries=2, read_timeout=120.0)


def make_client(endpoint: str, region: str, service: str) -> Any:
    """Return the boto3 client for ``service`` of the local stack at ``endpoint`` (:meth:`ops.stack.Stack.client`)."""
    return Stack(target="local", backend="embedded", region=region, endpoint=endpoint).client(service, TEST_POLICY)


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
    state_dir: Path | None = None
    port: int = 0
    up_output: str = ""
    backend: str = "embedded"
    destroyed: bool = False

    @property
    def state_file(self) -> Path | None:
        """The stack's ``stack.json`` (what ``make local-up`` writes to ``.local/stack.json``)."""
        return self.state_dir / stackfile.STATE_FILE if self.state_dir else None

    def client(self, service: str) -> Any:
        """Return a boto3 client for ``service`` against the stack's endpoint."""
        return make_client(self.endpoint, self.region, service)


def write_stack_file(
    directory: Path,
    backend: str,
    endpoint: str | None,
    outputs: dict[str, Any],
    region: str = REGION,
    hot_reload_dir: str | None = None,
) -> Path:
    """Write a stack file the way ``make local-up`` does (:func:`ops.stackfile.save`) and return its path."""
    stack = Stack(
        target="local" if endpoint else "aws",
        backend=backend,
        region=region,
        endpoint=endpoint,
        outputs=stackfile.plain_outputs(outputs),
        hot_reload_dir=hot_reload_dir,
    )
    return stackfile.save(stack, directory)


def cli_env() -> dict[str, str]:
    """Return the environment for ``python -m ops`` in tests.

    Short async retry delays, no inherited state directory, and ``LOCALCLOUD_EXIT_WITH_PID`` set to this process,
    so a server that ``up`` starts stops when the test process is gone.
    """
    env = dict(os.environ)
    env.pop(stackfile.STATE_DIR_ENV, None)
    env["LOCALCLOUD_RETRY_DELAYS"] = TEST_RETRY_DELAYS
    # The embedded servers of the tests take fault-injection rules (tests/faults, injected_fault below).
    env[faults.FAULTS_ENV] = "1"
    # A server started by `up` for the tests stops by itself when this test process dies.
    env["LOCALCLOUD_EXIT_WITH_PID"] = str(os.getpid())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def leftovers(info: StackInfo) -> list[str]:
    """Return the stack's resources that still exist on its server (empty after a clean destroy)."""
    out = info.outputs
    found: list[str] = []
    names = {b["Name"] for b in info.client("s3").list_buckets().get("Buckets", [])}
    found += [f"bucket {out[k]}" for k in ("source_bucket", "destination_bucket", "failed_bucket") if out[k] in names]
    functions = {f["FunctionName"] for f in info.client("lambda").list_functions().get("Functions", [])}
    if out["function_name"] in functions:
        found.append(f"function {out['function_name']}")
    queues = set(info.client("sqs").list_queues().get("QueueUrls", []))
    queue_names = {url.rsplit("/", 1)[-1] for url in queues}
    for key in ("notifications_queue_url", "dlq_url"):
        if out.get(key) and out[key].rsplit("/", 1)[-1] in queue_names:
            found.append(f"queue {out[key]}")
    topics = {t["TopicArn"] for t in info.client("sns").list_topics().get("Topics", [])}
    if out["sns_topic_arn"] in topics:
        found.append(f"topic {out['sns_topic_arn']}")
    groups = info.client("logs").describe_log_groups(logGroupNamePrefix=out["log_group_name"]).get("logGroups", [])
    found += [f"log group {g['logGroupName']}" for g in groups if g["logGroupName"] == out["log_group_name"]]
    return found


def keys_in(s3: Any, bucket: str, prefix: str = "") -> set[str]:
    """Return every key in ``bucket`` (under ``prefix``), over all pages of ``list_objects_v2``."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def bucket_contents(info: StackInfo) -> dict[str, list[str]]:
    """Return the keys in each of the stack's buckets that still exists (bucket name to sorted keys)."""
    s3 = info.client("s3")
    names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    found: dict[str, list[str]] = {}
    for output in ("source_bucket", "destination_bucket", "failed_bucket"):
        bucket = info.outputs[output]
        if bucket in names:
            found[bucket] = sorted(keys_in(s3, bucket))
    return found


def destroy_stack(info: StackInfo, port: int, timeout: float = DESTROY_TIMEOUT_S, stall_s: float | None = None) -> None:
    """Run :func:`ops.localroot.destroy` on the stack in a process group of its own.

    A destroy that hangs (a provider retrying for ever) is killed with its terraform and provider processes after
    ``timeout`` seconds (default :data:`DESTROY_TIMEOUT_S`) and reported, instead of blocking the test session.
    With ``stall_s``, it is also given up as soon as only buckets are left and their objects stay the same for
    ``stall_s`` seconds (a force_destroy bucket that never empties), naming the keys that stay.
    """
    assert info.state_dir is not None
    code = (
        "import sys; from pathlib import Path; from ops import localroot; "
        "localroot.destroy(sys.argv[2], Path(sys.argv[3]), region=sys.argv[1])"
    )
    tf_state = info.state_dir / statedir.TFSTATE_DIR
    args = [sys.executable, "-c", code, info.region, f"http://127.0.0.1:{port}", str(tf_state)]
    proc = subprocess.Popen(
        args, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    output_lines: list[str] = []
    reader = threading.Thread(target=lambda: output_lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    last: tuple[Any, float] = (None, time.monotonic())
    stalled = ""
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1.0)
        if stall_s is None:
            continue
        left = leftovers(info)
        contents = bucket_contents(info) if left and all(item.startswith("bucket ") for item in left) else None
        if contents is None or contents != last[0]:
            last = (contents, time.monotonic())
        elif time.monotonic() - last[1] >= stall_s:
            stalled = f"only the buckets are left and their objects did not change for {stall_s:.0f} s: {contents}"
            break
    if proc.poll() is None:
        procs.stop_group(proc.pid, timeout=5)
        proc.wait()
        reader.join(timeout=5)
        why = stalled or f"did not finish within {timeout:.0f} s"
        raise AssertionError(f"terraform destroy {why}:\n{''.join(output_lines)[-3000:]}")
    reader.join(timeout=5)
    assert proc.returncode == 0, f"terraform destroy failed:\n{''.join(output_lines)[-3000:]}"


def poll(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3, what: str = "condition") -> Any:
    """Call ``check`` every ``interval`` seconds until it returns something truthy, and return that.

    Raises ``AssertionError`` naming ``what`` when ``timeout`` seconds pass first (a bounded wait, not a timing
    assertion).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:.0f} s")
        time.sleep(interval)


def _faults_call(endpoint: str, method: str, path: str = "", document: Any = None) -> dict[str, Any]:
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(f"{endpoint}{faults.FAULTS_PATH}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a loopback test server
        return json.loads(response.read())


def fault_rules(endpoint: str) -> list[dict[str, Any]]:
    """Return the fault rules of the embedded server at ``endpoint``, each with its ``hits``."""
    return _faults_call(endpoint, "GET")["rules"]


@contextlib.contextmanager
def injected_fault(endpoint: str, **rule: Any) -> Iterator[str]:
    """Add a fault rule (:mod:`localcloud.faults`) to the embedded server at ``endpoint``; remove it on exit.

    Yields the rule's id (for :func:`fault_rules`). Example:
    ``with injected_fault(info.endpoint, service="s3", operation="PutObject", bucket=dest, status=503):``.
    """
    rule_id = _faults_call(endpoint, "POST", document=rule)["id"]
    try:
        yield rule_id
    finally:
        _faults_call(endpoint, "DELETE", f"/{rule_id}")


#: The trust policy of a function's execution role: Lambda may assume it (as every real stack's role says).
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
#: The permissions of the test functions' roles, for tests about the executor rather than IAM: everything.
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def lambda_role(iam: Any, name: str, policy: str = ALLOW_ALL) -> str:
    """Return the ARN of execution role ``name`` (created when missing, Lambda's trust policy and ``policy``)."""
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="test-permissions", PolicyDocument=policy)
        return arn


def allow_s3(lam: Any, function: str, bucket: str) -> None:
    """Let S3 invoke ``function`` for events of ``bucket`` (what ``aws_lambda_permission`` does in the stack)."""
    lam.add_permission(
        FunctionName=function,
        StatementId=f"s3-{bucket}",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn=f"arn:aws:s3:::{bucket}",
    )


def client_as(endpoint: str, region: str, service: str, keys: dict[str, str]) -> Any:
    """A boto3 client for ``service`` signing with ``keys`` (an IAM user's access key or STS ``Credentials``): a
    caller the embedded cloud evaluates, unlike the administrator's ``test`` keys of :func:`make_client`."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys.get("SessionToken"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def s3_put_event(region: str, bucket: str, key: str, etag: str, sequencer: str | None = None) -> dict[str, Any]:
    """The S3 ``ObjectCreated:Put`` event of one object version, as S3 would deliver it (again)."""
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": urllib.parse.quote_plus(key, safe="/"), "eTag": etag.strip('"')},
        },
    }
    if sequencer is not None:
        record["s3"]["object"]["sequencer"] = sequencer
    return {"Records": [record]}
