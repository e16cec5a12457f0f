"""The moto 5.2.5 seam and the local Lambda executor, with tiny handlers, against a real embedded server."""

from __future__ import annotations

import base64
import io
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest

from localcloud.runtime import machine_arch

pytestmark = pytest.mark.integration

HANDLER = """
import json
import os
import sys
import time

import boto3

CALLS = 0


def handler(event, context):
    global CALLS
    CALLS += 1
    print("event", json.dumps(event))
    action = event.get("action")
    if action == "raise":
        raise ValueError("bad input: " + str(event.get("detail")))
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(3)
    if action == "put":
        boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"from the function")
    if action == "not-json":
        return {1, 2}
    return {
        "pid": os.getpid(),
        "calls": CALLS,
        "python": "%d.%d" % sys.version_info[:2],
        "env": {k: os.environ.get(k) for k in event.get("env", [])},
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "layer": __import__("layerlib").VALUE if event.get("layer") else None,
    }
"""


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buf.getvalue()


def poll(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture(scope="module")
def role_arn(local_cloud) -> str:
    iam = local_cloud.client("iam")
    name = "executor-test-role"
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        policy = {"Version": "2012-10-17", "Statement": []}
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy))["Role"]["Arn"]


@pytest.fixture
def make_function(local_cloud, role_arn) -> Callable[..., str]:
    lam = local_cloud.client("lambda")
    created: list[str] = []

    def make(
        timeout: int = 10, env: dict[str, str] | None = None, runtime: str = "python3.13", layers: list[str] = ()
    ) -> str:
        name = f"exec-{uuid.uuid4().hex[:10]}"
        lam.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=role_arn,
            Handler="index.handler",
            Code={"ZipFile": zip_bytes({"index.py": HANDLER})},
            Timeout=timeout,
            MemorySize=256,
            Environment={"Variables": env or {}},
            Layers=list(layers),
        )
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


def invoke(local_cloud, name: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    response = local_cloud.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event), LogType="Tail")
    return response, json.loads(response["Payload"].read())


def log_messages(local_cloud, name: str, pattern: str = "") -> list[str]:
    logs = local_cloud.client("logs")
    kwargs = {"logGroupName": f"/aws/lambda/{name}"}
    if pattern:
        kwargs["filterPattern"] = pattern
    try:
        return [e["message"] for e in logs.filter_log_events(**kwargs)["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def test_sync_invoke_returns_the_result_with_env_and_endpoint(local_cloud, make_function):
    name = make_function(env={"GREETING": "hello", "AWS_REGION": "us-west-2"})

    response, body = invoke(local_cloud, name, {"env": ["GREETING", "AWS_ENDPOINT_URL", "AWS_REGION",
                                                        "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                                        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_ACCESS_KEY_ID"]})  # fmt: skip

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert body["env"] == {
        "GREETING": "hello",
        "AWS_ENDPOINT_URL": local_cloud.endpoint,
        "AWS_REGION": local_cloud.region,  # reserved: the function's own value does not win, as on Lambda
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_ACCESS_KEY_ID": "test",
    }
    assert body["function_name"] == name
    assert 0 < body["remaining_ms"] <= 10_000
    assert body["request_id"]


def test_function_reaches_the_local_cloud_through_aws_endpoint_url(local_cloud, make_function):
    s3 = local_cloud.client("s3")
    bucket = f"exec-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    name = make_function()

    response, _ = invoke(local_cloud, name, {"action": "put", "bucket": bucket, "key": "written by lambda.txt"})

    assert "FunctionError" not in response
    assert s3.get_object(Bucket=bucket, Key="written by lambda.txt")["Body"].read() == b"from the function"


def test_a_warm_second_call_reuses_the_worker(local_cloud, make_function):
    name = make_function()

    _, first = invoke(local_cloud, name, {})
    _, second = invoke(local_cloud, name, {})

    assert second["pid"] == first["pid"]
    assert second["calls"] == first["calls"] + 1
    reports = log_messages(local_cloud, name, "REPORT")
    assert len(reports) == 2
    assert sum("Init Duration" in line for line in reports) == 1


def test_a_raising_handler_is_a_function_error(local_cloud, make_function):
    name = make_function()

    response, body = invoke(local_cloud, name, {"action": "raise", "detail": 42})

    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "bad input: 42"
    assert any("index.py" in frame for frame in body["stackTrace"])
    assert "[ERROR] ValueError: bad input: 42" in base64.b64decode(response["LogResult"]).decode()
    # The worker survives a handled exception and stays warm.
    _, again = invoke(local_cloud, name, {})
    assert again["calls"] == 2


def test_a_result_that_is_not_json_is_a_marshal_error(local_cloud, make_function):
    name = make_function()

    response, body = invoke(local_cloud, name, {"action": "not-json"})

    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"


def test_the_timeout_is_enforced_and_the_worker_replaced(local_cloud, make_function):
    name = make_function(timeout=1)
    _, before = invoke(local_cloud, name, {})

    response, body = invoke(local_cloud, name, {"action": "sleep", "seconds": 60})

    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    _, after = invoke(local_cloud, name, {})
    assert after["pid"] != before["pid"]
    assert after["calls"] == 1
    assert any("Status: timeout" in line for line in log_messages(local_cloud, name, "REPORT"))


def test_a_crashing_worker_is_an_exit_error_and_is_replaced(local_cloud, make_function):
    name = make_function()
    _, before = invoke(local_cloud, name, {})

    response, body = invoke(local_cloud, name, {"action": "exit"})

    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]
    _, after = invoke(local_cloud, name, {})
    assert after["pid"] != before["pid"]


def test_logs_with_start_end_report_land_in_cloudwatch_logs(local_cloud, make_function):
    name = make_function()

    _, body = invoke(local_cloud, name, {"marker": "find-me"})

    request_id = body["request_id"]
    messages = log_messages(local_cloud, name)
    start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
    end = messages.index(f"END RequestId: {request_id}")
    assert start < end
    assert any('"marker": "find-me"' in m for m in messages[start:end])
    report = messages[end + 1]
    for part in (f"REPORT RequestId: {request_id}", "Duration: ", "Billed Duration: ", "Memory Size: 256 MB",
                 "Max Memory Used: ", "Init Duration: "):  # fmt: skip
        assert part in report
    streams = local_cloud.client("logs").describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert len(streams) == 1
    assert "/[$LATEST]" in streams[0]["logStreamName"]


def test_layers_are_on_sys_path_with_the_runtime_interpreter(local_cloud, make_function):
    lam = local_cloud.client("lambda")
    layer = lam.publish_layer_version(
        LayerName=f"exec-layer-{uuid.uuid4().hex[:8]}",
        Content={"ZipFile": zip_bytes({"python/layerlib.py": "VALUE = 'from the layer'\n"})},
        CompatibleRuntimes=["python3.13"],
    )
    name = make_function(layers=[layer["LayerVersionArn"]])

    _, body = invoke(local_cloud, name, {"layer": True})

    assert body["layer"] == "from the layer"
    assert body["python"] == "3.13"


def test_a_layer_built_for_another_machine_falls_back_to_the_project_interpreter_and_says_so(
    local_cloud, make_function
):
    foreign = (
        "python/PIL/_imaging.cpython-313-aarch64-linux-gnu.so"
        if machine_arch() == "x86_64"
        else ("python/PIL/_imaging.cpython-313-x86_64-linux-gnu.so")
    )
    layer = local_cloud.client("lambda").publish_layer_version(
        LayerName=f"exec-foreign-{uuid.uuid4().hex[:8]}",
        Content={"ZipFile": zip_bytes({foreign: "", "python/layerlib.py": "VALUE = 1\n"})},
    )
    name = make_function(layers=[layer["LayerVersionArn"]])

    response, body = invoke(local_cloud, name, {})

    assert "FunctionError" not in response
    assert body["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    notes = [m for m in log_messages(local_cloud, name) if m.startswith("local executor: running with")]
    assert len(notes) == 1
    assert sys.executable in notes[0]
    assert "_imaging.cpython-313-" in notes[0]


def test_event_invocations_retry_then_land_in_the_on_failure_destination(local_cloud, make_function):
    sqs = local_cloud.client("sqs")
    lam = local_cloud.client("lambda")
    queue_url = sqs.create_queue(QueueName=f"exec-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = make_function()
    lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": queue_arn}}
    )
    event = {"action": "raise", "detail": "async"}

    response = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))

    assert response["StatusCode"] == 202
    messages = poll(lambda: sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages"))
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].endswith(f":function:{name}:$LATEST")
    assert record["requestPayload"] == event
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert len(log_messages(local_cloud, name, "REPORT")) == 2


def test_s3_notifications_invoke_the_function_asynchronously(local_cloud, make_function):
    s3 = local_cloud.client("s3")
    lam = local_cloud.client("lambda")
    source, target = (f"exec-{uuid.uuid4().hex[:10]}" for _ in range(2))
    for bucket in (source, target):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    name = make_function()
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    s3.put_bucket_notification_configuration(
        Bucket=source,
        NotificationConfiguration={"LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn,
                                                                     "Events": ["s3:ObjectCreated:*"]}]},
    )  # fmt: skip

    s3.put_object(Bucket=source, Key="photo one.jpg", Body=b"not really a photo")

    messages = poll(lambda: [m for m in log_messages(local_cloud, name) if m.startswith("event ")])
    event = json.loads(messages[0].removeprefix("event "))
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["s3"]["bucket"]["name"] == source
    assert record["s3"]["object"]["key"] == "photo+one.jpg"


def test_dry_run_does_not_run_the_function(local_cloud, make_function):
    name = make_function()

    response = local_cloud.client("lambda").invoke(FunctionName=name, InvocationType="DryRun")

    assert response["StatusCode"] == 204
    assert log_messages(local_cloud, name) == []


def test_health_reports_the_server_and_its_workers(local_cloud, make_function):
    from localcloud import procs

    name = make_function()
    invoke(local_cloud, name, {})

    health = procs.localcloud_health(local_cloud.port)

    assert health is not None
    assert health["moto_version"] == "5.2.5"
    assert any(w["function"] == name for w in health["lambda"]["workers"])


def test_bucket_policy_conditions_do_not_lock_out_the_http_endpoint(local_cloud):
    s3 = local_cloud.client("s3")
    bucket = f"exec-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    arn = f"arn:aws:s3:::{bucket}"
    https_only = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    deny_put = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"{arn}/locked/*"}
    policy = {"Version": "2012-10-17", "Statement": [https_only, deny_put]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    s3.put_object(Bucket=bucket, Key="open/photo.jpg", Body=b"x")
    with pytest.raises(s3.exceptions.ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="locked/photo.jpg", Body=b"x")

    assert s3.get_object(Bucket=bucket, Key="open/photo.jpg")["Body"].read() == b"x"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_list_object_versions_honours_url_encoding(local_cloud):
    s3 = local_cloud.client("s3")
    bucket = f"exec-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": local_cloud.region})
    key = "photos/été 1+1=2 100%.jpg"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    with urllib.request.urlopen(f"{local_cloud.endpoint}/{bucket}?versions&encoding-type=url") as response:
        document = ElementTree.fromstring(response.read())

    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    assert document.findtext("s3:EncodingType", namespaces=ns) == "url"
    encoded = document.findtext("s3:Version/s3:Key", namespaces=ns)
    assert encoded == "photos/%C3%A9t%C3%A9%201%2B1%3D2%20100%25.jpg"
    assert urllib.parse.unquote_plus(encoded) == key
    assert [v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == [key]
