"""The embedded local cloud keeps Lambda's contract under faults, through the real server.

Every failure of an attempt is a failed attempt (retried, then the on-failure destination): code that cannot be
unpacked, a deleted layer, a worker killed mid-invocation, a timeout, a worker over its ``MemorySize``.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from ops import launch
from tests.integration.test_executor import log_messages, zip_bytes
from tests.stacks import allow_s3, lambda_role, poll

pytestmark = pytest.mark.integration

FAULT_HANDLER = """
import os
import time


def handler(event, context):
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "allocate":
        block = bytearray(event["mb"] * 1024 * 1024)  # zero-filled: every page is touched
        time.sleep(event.get("hold", 0))
        return len(block)
    return {"pid": os.getpid()}
"""


@pytest.fixture(scope="module")
def role_arn(local_cloud) -> str:
    return lambda_role(local_cloud.client("iam"), "executor-faults-role")


@pytest.fixture
def dlq(local_cloud) -> tuple[str, str]:
    """An SQS queue (url, arn) for on-failure records."""
    sqs = local_cloud.client("sqs")
    url = sqs.create_queue(QueueName=f"faults-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    yield url, arn
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def make_function(local_cloud, role_arn) -> Callable[..., str]:
    lam = local_cloud.client("lambda")
    created: list[str] = []

    def make(
        code: bytes | None = None, timeout: int = 30, memory: int = 128, layers: list[str] = (), on_failure: str = ""
    ) -> str:
        name = f"faults-{uuid.uuid4().hex[:10]}"
        lam.create_function(FunctionName=name, Runtime="python3.13", Role=role_arn, Handler="index.handler",
                            Code={"ZipFile": code if code is not None else zip_bytes({"index.py": FAULT_HANDLER})},
                            Timeout=timeout, MemorySize=memory, Layers=list(layers))  # fmt: skip
        if on_failure:
            lam.put_function_event_invoke_config(
                FunctionName=name, MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": on_failure}}
            )
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


def invoke_async(local_cloud, name: str, event: dict[str, Any]) -> None:
    response = local_cloud.client("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))
    assert response["StatusCode"] == 202


def failure_record(local_cloud, queue_url: str) -> dict[str, Any]:
    """Wait for the one on-failure record in ``queue_url`` and return it."""
    sqs = local_cloud.client("sqs")
    messages = poll(lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"), timeout=180)
    assert len(messages) == 1
    return json.loads(messages[0]["Body"])


def assert_retried_then_sent_on_failure(record: dict[str, Any], name: str, error_type: str) -> None:
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # 1 + MaximumRetryAttempts
    assert record["requestContext"]["functionArn"].endswith(f":function:{name}:$LATEST")
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == error_type


def busy_worker(port: int, name: str) -> dict[str, Any] | None:
    """Return the health document's busy worker of function ``name``, if there is one."""
    health = launch.localcloud_health(port)
    workers = health["lambda"]["workers"] if health else []
    return next((w for w in workers if w["function"] == name and w["busy"]), None)


def test_an_s3_event_for_code_that_cannot_be_unpacked_is_queued_retried_and_sent_on_failure(
    local_cloud, make_function, dlq
):
    s3, lam = local_cloud.client("s3"), local_cloud.client("lambda")
    name = make_function(code=b"this is not a zip file", on_failure=dlq[1])
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    allow_s3(lam, name, bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn,
                                                                     "Events": ["s3:ObjectCreated:*"]}]},
    )  # fmt: skip

    s3.put_object(Bucket=bucket, Key="photo.jpg", Body=b"x")

    record = failure_record(local_cloud, dlq[0])
    assert_retried_then_sent_on_failure(record, name, "Runtime.ExitError")
    assert "not a valid zip file" in record["responsePayload"]["errorMessage"]
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "photo.jpg"


def test_an_event_for_a_function_whose_layer_was_deleted_is_queued_retried_and_sent_on_failure(
    local_cloud, make_function, dlq
):
    lam = local_cloud.client("lambda")
    layer_name = f"faults-layer-{uuid.uuid4().hex[:8]}"
    layer = lam.publish_layer_version(LayerName=layer_name, Content={"ZipFile": zip_bytes({"python/x.py": ""})})
    name = make_function(layers=[layer["LayerVersionArn"]], on_failure=dlq[1])
    lam.delete_layer_version(LayerName=layer_name, VersionNumber=layer["Version"])

    invoke_async(local_cloud, name, {"n": 1})

    record = failure_record(local_cloud, dlq[0])
    assert_retried_then_sent_on_failure(record, name, "Runtime.ExitError")
    assert "no longer exists" in record["responsePayload"]["errorMessage"]
    assert record["requestPayload"] == {"n": 1}
    # A synchronous invoke fails the same way instead of answering with a server error.
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.ExitError"


def test_a_worker_killed_mid_invocation_is_a_failed_attempt_retried_and_replaced(local_cloud, make_function, dlq):
    name = make_function(on_failure=dlq[1])
    killed: list[int] = []

    invoke_async(local_cloud, name, {"action": "sleep", "seconds": 25})
    for _ in range(2):  # the attempt and its retry
        worker = poll(lambda: (w := busy_worker(local_cloud.port, name)) and w["pid"] not in killed and w, timeout=120)
        os.kill(worker["pid"], signal.SIGKILL)
        killed.append(worker["pid"])

    record = failure_record(local_cloud, dlq[0])
    assert_retried_then_sent_on_failure(record, name, "Runtime.ExitError")
    assert record["responsePayload"]["errorMessage"] == (
        f"RequestId: {record['requestContext']['requestId']} Error: Runtime exited with error: signal: killed"
    )
    reports = log_messages(local_cloud, name, "REPORT")
    assert len(reports) == 2 and all(r.endswith("Status: error\tError Type: Runtime.ExitError") for r in reports)
    # The pool replaced the killed workers: the next invocation runs in a new one.
    response = local_cloud.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read())["pid"] not in killed


def test_a_timeout_is_a_failed_attempt_retried_then_sent_on_failure(local_cloud, make_function, dlq):
    name = make_function(timeout=1, on_failure=dlq[1])

    invoke_async(local_cloud, name, {"action": "sleep", "seconds": 60})

    record = failure_record(local_cloud, dlq[0])
    assert_retried_then_sent_on_failure(record, name, "Sandbox.Timedout")
    assert record["responsePayload"]["errorMessage"].endswith(
        f"{record['requestContext']['requestId']} Task timed out after 1.00 seconds"
    )
    reports = log_messages(local_cloud, name, "REPORT")
    assert len(reports) == 2 and all(r.endswith("Status: timeout") for r in reports)


def test_a_worker_over_its_memory_size_is_killed_as_lambda_reports_it(local_cloud, make_function):
    name = make_function(memory=128)
    lam = local_cloud.client("lambda")
    first_pid = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())["pid"]

    response = lam.invoke(FunctionName=name, Payload=json.dumps({"action": "allocate", "mb": 256, "hold": 10}))

    body = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert body["errorMessage"] == f"RequestId: {body['requestId']} Error: Runtime exited with error: signal: killed"
    report = next(r for r in log_messages(local_cloud, name, "REPORT") if body["requestId"] in r)
    assert "\tMemory Size: 128 MB\tMax Memory Used: 128 MB" in report
    assert report.endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    messages = log_messages(local_cloud, name)
    crash = messages.index(body["errorMessage"])
    assert messages[crash + 1] == "Runtime.OutOfMemory"
    # A fresh worker serves the next invocation.
    after = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert after["pid"] != first_pid


def test_an_asynchronous_invocation_out_of_memory_is_retried_then_sent_on_failure(local_cloud, make_function, dlq):
    name = make_function(memory=128, on_failure=dlq[1])

    invoke_async(local_cloud, name, {"action": "allocate", "mb": 256, "hold": 10})

    record = failure_record(local_cloud, dlq[0])
    assert_retried_then_sent_on_failure(record, name, "Runtime.OutOfMemory")
    reports = log_messages(local_cloud, name, "REPORT")
    assert len(reports) == 2
    assert all("Max Memory Used: 128 MB" in r and r.endswith("Error Type: Runtime.OutOfMemory") for r in reports)


def test_memory_within_the_limit_is_not_touched_and_the_health_document_says_it_is_enforced(local_cloud, make_function):
    name = make_function(memory=256)

    response = local_cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps({"action": "allocate",
                                                                                         "mb": 64}))  # fmt: skip

    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == 64 * 1024 * 1024
    health = launch.localcloud_health(local_cloud.port)
    assert health["lambda"]["memory_enforced"] is True
    [worker] = [w for w in health["lambda"]["workers"] if w["function"] == name]
    assert worker["busy"] is False and worker["memory_size"] == 256 and worker["memory_enforced"] is True


def test_the_server_says_at_exit_how_many_asynchronous_invocations_it_drops(tmp_path):
    from ops import procs
    from tests.stacks import REGION, make_client

    port = procs.free_port()
    handle = launch.start_localcloud(port, tmp_path, retry_delays="60", concurrency=1, exit_with=os.getpid())
    try:
        lam, iam = make_client(handle.endpoint, REGION, "lambda"), make_client(handle.endpoint, REGION, "iam")
        role = lambda_role(iam, "dropping")
        lam.create_function(FunctionName="dropping", Runtime="python3.13", Role=role, Handler="index.handler",
                            Code={"ZipFile": zip_bytes({"index.py": FAULT_HANDLER})}, Timeout=60)  # fmt: skip
        for _ in range(3):
            lam.invoke(FunctionName="dropping", InvocationType="Event", Payload=b'{"action": "sleep", "seconds": 50}')
        poll(lambda: busy_worker(port, "dropping"), timeout=120)
    finally:
        assert procs.stop_group(handle.pid, timeout=30)

    log = handle.log_path.read_text()
    assert (
        "shutting down with 3 asynchronous invocation(s) not finished (2 queued, 0 waiting to retry, 1 running); "
        "they are dropped" in log
    )


def in_process_spec(code_dir, memory: int = 128):
    from localcloud.invocation import FunctionSpec

    return FunctionSpec(name="inproc-memory", arn="arn:aws:lambda:eu-west-1:123456789012:function:inproc-memory",
                        version="$LATEST", handler="index.handler", runtime="python3.13", timeout=30.0,
                        memory_size=memory, environment=(), region="eu-west-1", account_id="123456789012",
                        code_dir=code_dir)  # fmt: skip


@pytest.mark.parametrize("enforce", [True, False], ids=["enforced", "LOCALCLOUD_ENFORCE_MEMORY=0"])
def test_memory_taken_while_the_handler_is_imported_counts_unless_enforcement_is_off(tmp_path, enforce):
    from localcloud.executor import ListLogSink, LocalExecutor

    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text(
        "import time\nBLOCK = bytearray(256 * 1024 * 1024)\ntime.sleep(3)\n\n"
        "def handler(event, context):\n    return len(BLOCK)\n"
    )
    executor = LocalExecutor(tmp_path / "cache", "http://127.0.0.1:9", ListLogSink(), enforce_memory=enforce)
    try:
        invocation = executor.invoke(in_process_spec(code), {})
    finally:
        executor.shutdown()

    report = next(line for line in invocation.log_lines if line.startswith("REPORT"))
    if enforce:
        assert invocation.function_error == "Unhandled"
        assert invocation.error_type == "Runtime.OutOfMemory"
        assert "Runtime exited with error: signal: killed" in json.loads(invocation.payload)["errorMessage"]
        assert "\tMax Memory Used: 128 MB\t" in report
        assert report.endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    else:
        assert invocation.ok
        assert json.loads(invocation.payload) == 256 * 1024 * 1024
        assert int(report.split("Max Memory Used: ")[1].split(" MB")[0]) > 256
