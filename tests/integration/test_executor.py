"""The moto 5.2.5 seam and the local Lambda executor, with tiny handlers, against a real embedded server."""

from __future__ import annotations

import base64
import io
import json
import os
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
from tests.stacks import allow_s3, client_as, lambda_role, poll

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


@pytest.fixture(scope="module")
def role_arn(local_cloud) -> str:
    return lambda_role(local_cloud.client("iam"), "executor-test-role")


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
        # A session of the function's role (temporary keys start with ASIA), not the administrator's "test".
        "AWS_ACCESS_KEY_ID": body["env"]["AWS_ACCESS_KEY_ID"],
    }
    assert body["env"]["AWS_ACCESS_KEY_ID"].startswith("ASIA")
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
    allow_s3(lam, name, source)
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
    from ops import launch

    name = make_function()
    invoke(local_cloud, name, {})

    health = launch.localcloud_health(local_cloud.port)

    assert health is not None
    assert health["moto_version"] == "5.2.5"
    assert any(w["function"] == name for w in health["lambda"]["workers"])


# -- hot reload: code from LocalStack's magic "hot-reload" bucket, run live from a directory --------------------------

HOT_HANDLER = """
import os

VERSION = "one"


def handler(event, context):
    return {"version": VERSION, "pid": os.getpid()}
"""


@pytest.fixture
def hot_function(local_cloud, role_arn, tmp_path) -> Callable[..., str]:
    lam = local_cloud.client("lambda")
    created: list[str] = []

    def make(code_dir) -> str:
        name = f"hot-{uuid.uuid4().hex[:10]}"
        lam.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role_arn,
            Handler="index.handler",
            Code={"S3Bucket": "hot-reload", "S3Key": str(code_dir)},
            Timeout=10,
        )
        created.append(name)
        return name

    yield make
    for name in created:
        lam.delete_function(FunctionName=name)


def test_hot_reload_runs_a_saved_change_at_the_next_invocation_in_new_workers(local_cloud, hot_function, tmp_path):
    code = tmp_path / "function"
    code.mkdir()
    (code / "index.py").write_text(HOT_HANDLER)
    name = hot_function(code)
    _, first = invoke(local_cloud, name, {})
    _, warm = invoke(local_cloud, name, {})
    assert first["version"] == warm["version"] == "one"
    assert warm["pid"] == first["pid"]

    # The same size and maybe the same second: a .pyc keyed on (mtime in seconds, size) must not hide the change.
    (code / "index.py").write_text(HOT_HANDLER.replace('"one"', '"two"'))
    response, after = invoke(local_cloud, name, {})
    deadline = time.monotonic() + 30  # a generous bound: the very next invocation is expected to see it
    while after["version"] != "two" and time.monotonic() < deadline:
        time.sleep(0.2)
        response, after = invoke(local_cloud, name, {})

    assert after["version"] == "two"
    assert after["pid"] != first["pid"]
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "INIT_START" in tail
    assert f"hot reload: running the code in {code}" in tail
    assert sum("Init Duration" in line for line in log_messages(local_cloud, name, "REPORT")) == 2
    poll(lambda: not _alive(first["pid"]), 30, what="the warm worker of the old code stopped")
    assert not list(code.rglob("*.pyc")), "bytecode must go to the cache, not into the working tree"


def test_hot_reload_picks_up_new_modules_and_update_function_code_switches_to_a_zip_and_back(
    local_cloud, hot_function, tmp_path
):
    code = tmp_path / "function"
    (code / "pkg").mkdir(parents=True)
    (code / "pkg" / "__init__.py").write_text("")
    (code / "index.py").write_text("from pkg import words\n\ndef handler(event, context):\n    return words.WORD\n")
    (code / "pkg" / "words.py").write_text("WORD = 'first'\n")
    name = hot_function(code)
    lam = local_cloud.client("lambda")
    assert invoke(local_cloud, name, {})[1] == "first"

    (code / "pkg" / "words.py").write_text("WORD = 'edited in a package'\n")
    assert invoke(local_cloud, name, {})[1] == "edited in a package"

    lam.update_function_code(FunctionName=name, ZipFile=zip_bytes({"index.py": HANDLER}))
    assert "pid" in invoke(local_cloud, name, {})[1]  # the zip's handler

    lam.update_function_code(FunctionName=name, S3Bucket="hot-reload", S3Key=str(code))
    assert invoke(local_cloud, name, {})[1] == "edited in a package"


@pytest.mark.parametrize("key", ["relative/lambda", "/does/not/exist", "FILE"], ids=["relative", "missing", "file"])
def test_a_hot_reload_key_that_is_no_directory_is_refused_with_the_fix(local_cloud, role_arn, tmp_path, key):
    from botocore.exceptions import ClientError

    if key == "FILE":
        key = str(tmp_path / "index.py")
        (tmp_path / "index.py").write_text(HOT_HANDLER)
    lam = local_cloud.client("lambda")

    with pytest.raises(ClientError) as raised:
        lam.create_function(FunctionName=f"hot-{uuid.uuid4().hex[:10]}", Runtime="python3.13", Role=role_arn,
                            Handler="index.handler", Code={"S3Bucket": "hot-reload", "S3Key": key})  # fmt: skip

    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert "hot reload" in error["Message"] and "absolute path of" in error["Message"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
    # The function's own role (what the stack's buckets see): any S3 call allowed by its identity policy.
    iam, sts = local_cloud.client("iam"), local_cloud.client("sts")
    keys = sts.assume_role(RoleArn=lambda_role(iam, "bucket-policy-role"), RoleSessionName="fn")["Credentials"]
    role_s3 = client_as(local_cloud.endpoint, local_cloud.region, "s3", keys)

    role_s3.put_object(Bucket=bucket, Key="open/photo.jpg", Body=b"x")
    with pytest.raises(role_s3.exceptions.ClientError) as denied:
        role_s3.put_object(Bucket=bucket, Key="locked/photo.jpg", Body=b"x")

    assert role_s3.get_object(Bucket=bucket, Key="open/photo.jpg")["Body"].read() == b"x"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert denied.value.response["Error"]["Message"].endswith("with an explicit deny in a resource-based policy")


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


# -- robustness: nothing is lost, nothing stays stuck, nothing is left running ------------------------------------


class ListDestinations:
    """Destination records kept in memory (the on-success/on-failure targets of the in-process invoker tests)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def send(self, destination_arn: str, record: dict[str, Any]) -> None:
        self.records.append((destination_arn, record))


def local_spec(code_dir, timeout: float = 5.0):
    from localcloud.executor import FunctionSpec

    return FunctionSpec(
        name="inproc",
        arn="arn:aws:lambda:eu-west-1:123456789012:function:inproc",
        version="$LATEST",
        handler="index.handler",
        runtime="python3.13",
        timeout=timeout,
        memory_size=128,
        environment=(),
        region="eu-west-1",
        account_id="123456789012",
        code_dir=code_dir,
    )


def test_an_attempt_the_executor_cannot_start_is_retried_then_sent_on_failure(tmp_path):
    from localcloud.asyncinvoke import AsyncInvoker, EventInvokeSettings
    from localcloud.executor import ListLogSink, LocalExecutor

    executor = LocalExecutor(tmp_path / "cache", "http://127.0.0.1:9", ListLogSink(), concurrency=1)
    destinations = ListDestinations()
    invoker = AsyncInvoker(executor, destinations, retry_delays=(0.0,), threads=1)
    good_code = tmp_path / "good"
    good_code.mkdir()
    (good_code / "index.py").write_text("def handler(event, context):\n    return {'ok': event['n']}\n")
    settings = EventInvokeSettings(maximum_retry_attempts=2, on_success="arn:ok", on_failure="arn:failed")
    try:
        # The code directory is gone, so no worker can even be started for this function.
        invoker.submit(local_spec(tmp_path / "vanished"), {"n": 1}, settings)
        invoker.submit(local_spec(good_code), {"n": 2}, settings)
        assert invoker.wait_idle(120)
    finally:
        invoker.shutdown()
        executor.shutdown()

    by_payload = {record["requestPayload"]["n"]: (arn, record) for arn, record in destinations.records}
    assert sorted(by_payload) == [1, 2]
    arn, failed = by_payload[1]
    assert arn == "arn:failed"
    assert failed["requestContext"]["condition"] == "RetriesExhausted"
    assert failed["requestContext"]["approximateInvokeCount"] == 3
    assert failed["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert "could not run the function" in failed["responsePayload"]["errorMessage"]
    # The invoker's thread survived and served the next event.
    assert by_payload[2][0] == "arn:ok"
    assert by_payload[2][1]["responsePayload"] == {"ok": 2}


def test_a_worker_slower_to_start_than_the_init_timeout_fails_once_and_the_next_worker_is_started_again(tmp_path):
    from localcloud.executor import ListLogSink, LocalExecutor

    code = tmp_path / "slow"
    code.mkdir()
    (code / "index.py").write_text("import time\ntime.sleep(3)\n\ndef handler(event, context):\n    return 'warm'\n")
    sink = ListLogSink()
    executor = LocalExecutor(tmp_path / "cache", "http://127.0.0.1:9", sink, concurrency=1, init_timeout=0.2)
    spec = local_spec(code, timeout=1.0)
    try:
        first = executor.invoke(spec, {})
        executor.init_timeout = 60.0
        second = executor.invoke(spec, {})
    finally:
        executor.shutdown()

    assert first.error_type == "Runtime.ExitError"
    assert "init did not finish within" in json.loads(first.payload)["errorMessage"]
    assert second.ok
    assert json.loads(second.payload) == "warm"
    assert second.cold_start


@pytest.fixture(scope="module")
def one_worker_cloud(tmp_path_factory):
    """A server of its own with one Lambda worker (and one async thread) per function version."""
    import os

    from ops import launch, procs
    from tests.stacks import REGION, LocalCloud

    state_dir = tmp_path_factory.mktemp("one-worker")
    port = procs.free_port()
    handle = launch.start_localcloud(port, state_dir, retry_delays="0.1", concurrency=1, exit_with=os.getpid())
    yield LocalCloud(handle.endpoint, REGION, port, state_dir, handle.pid)
    assert procs.stop_group(handle.pid)


def test_a_burst_of_async_invocations_on_one_worker_all_end_in_a_destination(one_worker_cloud):
    cloud = one_worker_cloud
    iam, lam, sqs, s3 = (cloud.client(s) for s in ("iam", "lambda", "sqs", "s3"))
    role = lambda_role(iam, f"burst-{uuid.uuid4().hex[:8]}")
    name = f"burst-{uuid.uuid4().hex[:8]}"
    lam.create_function(FunctionName=name, Runtime="python3.13", Role=role, Handler="index.handler",
                        Code={"ZipFile": zip_bytes({"index.py": HANDLER})}, Timeout=2, MemorySize=128)  # fmt: skip
    queues = {}
    for kind in ("ok", "failed"):
        url = sqs.create_queue(QueueName=f"burst-{kind}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        queues[kind] = (
            url,
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
        )
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnSuccess": {"Destination": queues["ok"][1]},
                           "OnFailure": {"Destination": queues["failed"][1]}},
    )  # fmt: skip
    bucket = f"burst-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": cloud.region})
    # Successes that call back into the server (S3 PutObject), exceptions, hangs past the timeout, crashes.
    events = [{"n": i, "action": "put", "bucket": bucket, "key": f"k{i}"} for i in range(20)]
    events += [{"n": 20 + i, "action": "raise"} for i in range(3)]
    events += [{"n": 23 + i, "action": "sleep", "seconds": 60} for i in range(3)]
    events += [{"n": 26 + i, "action": "exit"} for i in range(3)]

    for event in events:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event))

    records: dict[str, dict[int, dict[str, Any]]] = {"ok": {}, "failed": {}}

    def all_accounted() -> bool:
        for kind, (url, _) in queues.items():
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                record = json.loads(message["Body"])
                records[kind][record["requestPayload"]["n"]] = record
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(records["ok"]) + len(records["failed"]) >= len(events)

    poll(all_accounted, timeout=600, interval=0.5)
    assert sorted(records["ok"]) == list(range(20))
    assert sorted(records["failed"]) == list(range(20, 29))
    assert {records["failed"][n]["responsePayload"]["errorType"] for n in range(23, 26)} == {"Sandbox.Timedout"}
    assert {records["failed"][n]["responsePayload"]["errorType"] for n in range(26, 29)} == {"Runtime.ExitError"}
    assert all(r["requestContext"]["approximateInvokeCount"] == 2 for r in records["failed"].values())
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} == {f"k{i}" for i in range(20)}
    health = poll(lambda: (h := procs_health(cloud.port)) and h["lambda"]["pending_async"] == 0 and h)
    assert len([w for w in health["lambda"]["workers"] if w["function"] == name]) <= 1  # never more than the pool


def procs_health(port: int) -> dict[str, Any] | None:
    from ops import launch

    return launch.localcloud_health(port)


def test_the_server_and_its_workers_stop_when_the_exit_with_process_is_gone(tmp_path):
    import subprocess

    from ops import launch, procs
    from tests.stacks import REGION, make_client

    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    port = procs.free_port()
    try:
        handle = launch.start_localcloud(port, tmp_path, exit_with=parent.pid)
    except BaseException:
        parent.kill()
        raise
    try:
        lam = make_client(handle.endpoint, REGION, "lambda")
        iam = make_client(handle.endpoint, REGION, "iam")
        role = lambda_role(iam, "watched")
        lam.create_function(FunctionName="watched", Runtime="python3.13", Role=role, Handler="index.handler",
                            Code={"ZipFile": zip_bytes({"index.py": HANDLER})}, Timeout=10)  # fmt: skip
        worker_pid = json.loads(lam.invoke(FunctionName="watched", Payload=b"{}")["Payload"].read())["pid"]
        assert procs.pid_alive(worker_pid)

        parent.kill()
        parent.wait()

        poll(lambda: not procs.pid_alive(handle.pid) and not procs.pid_alive(worker_pid), timeout=60)
        assert "(--exit-with) is gone, shutting down" in handle.log_path.read_text()
    finally:
        parent.kill()
        procs.stop_group(handle.pid)
