"""``python -m bench.fidelity``: how each local backend behaves where AWS behaviour matters (docs/local-cloud.md).

``--backend embedded|ministack`` (repeatable; default both), ``--burst N`` (default 20).

For each backend it brings the real stack up (:func:`ops.launch.stack_up`, timed: the local-up time), then measures
with the pipeline function and with a tiny probe function it deploys next to it (no layer; sleeps, allocates memory
or copies its event into a bucket on request): cold and warm start, timeout and memory-limit enforcement, the S3
object key in the event, IAM enforcement (:func:`_iam_probe`: the probe, whose role has no policy, writes to a bucket;
then again with a grant of that bucket only), the SNS → SQS envelope, the function's
log lines and START/END/REPORT in CloudWatch Logs, async retries and the on-failure destination, the answers to a
foreign ``Host`` and ``Origin``, and a burst of uploads. Prints one JSON document per backend and writes them to
``bench/results/fidelity.json``. Wall-clock numbers are this machine's (2 shared cores), not a target's promise.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import logging
import os
import sys
import tempfile
import time
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

from ops import defaults, launch, procs, stackfile
from ops.stack import Policy, Stack, read_stack_file

log = logging.getLogger("bench.fidelity")
RESULTS = Path(__file__).resolve().parent / "results" / "fidelity.json"
#: Answers as the backend gave them: one retry at most (a fidelity difference must not be retried away), long reads.
AS_IS = Policy("as-is", retries=1, read_timeout=300.0, pool=32)

PROBE = """
import json, os, time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("alloc_mb"):
        block = bytearray(event["alloc_mb"] * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
    if "Records" in event or event.get("copy"):
        import boto3
        try:
            boto3.client("s3").put_object(
                Bucket=os.environ["COPY_BUCKET"], Key=event.get("copy", "event.json"), Body=json.dumps(event)
            )
            copied = "allowed"
        except Exception as exc:
            copied = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        if event.get("copy"):
            key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
            return {"copy": copied, "key_id": key_id, "session_token": bool(os.environ.get("AWS_SESSION_TOKEN"))}
    print("probe log line")
    return {"ok": True, "pid": os.getpid()}
"""
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _jpeg(width: int, height: int, seed: int) -> bytes:
    from PIL import Image

    image = Image.effect_noise((width, height), 40 + seed % 20).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _wait(check: Any, timeout: float = 120.0, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


def _status(port: int, headers: dict[str, str]) -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/", headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, response.getheader("Access-Control-Allow-Origin")


def measure(backend: str, burst: int) -> dict[str, Any]:
    """Bring a stack up on ``backend``, measure it, bring it down; return the measurements."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"fidelity-{backend}-"))
    port = procs.free_port()
    started = time.monotonic()
    up, current = launch.stack_up(state_dir, port, backend=backend)
    if current is None:
        raise SystemExit(f"`python -m ops up --backend {backend}` failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
    result: dict[str, Any] = {"backend": backend, "local_up_s": round(time.monotonic() - started, 1)}
    try:
        result.update(_measure(read_stack_file(state_dir / stackfile.STATE_FILE), port, burst))
    finally:
        launch.stack_down(state_dir)
    return result


def _measure(stack: Stack, port: int, burst: int) -> dict[str, Any]:
    out = stack.outputs

    def client(service: str) -> Any:
        return stack.client(service, AS_IS)

    s3, lam, logs, sqs, iam = (client(s) for s in ("s3", "lambda", "logs", "sqs", "iam"))
    r: dict[str, Any] = {}

    # CORS and Host (the guard in front of both backends).
    r["foreign_host_status"] = _status(port, {"Host": "evil.example"})[0]
    r["foreign_origin_status"] = _status(port, {"Host": "localhost", "Origin": "https://evil.example"})[0]
    r["loopback_origin_cors"] = _status(port, {"Host": "localhost", "Origin": "http://localhost:8501"})[1]

    # The probe: a role that allows nothing, a bucket it copies S3 events into.
    role = iam.create_role(RoleName="fidelity-probe", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    copy_bucket, events_bucket = "fidelity-copies", "fidelity-events"
    for bucket in (copy_bucket, events_bucket):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": defaults.DEFAULT_REGION})
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("probe.py", PROBE)
    lam.create_function(
        FunctionName="fidelity-probe",
        Runtime="python3.13",
        Role=role,
        Handler="probe.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=2,
        MemorySize=128,
        Environment={"Variables": {"COPY_BUCKET": copy_bucket}},
    )
    _wait(lambda: lam.get_function(FunctionName="fidelity-probe")["Configuration"].get("State") in (None, "Active"))

    def invoke(payload: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        t0 = time.monotonic()
        response = lam.invoke(FunctionName="fidelity-probe", Payload=json.dumps(payload).encode(), LogType="Tail")
        body = response["Payload"].read()
        return (time.monotonic() - t0) * 1000, {"error": response.get("FunctionError"), "body": body.decode()[:300]}

    r["probe_cold_invoke_ms"] = round(invoke({})[0])
    warm = sorted(invoke({})[0] for _ in range(5))
    r["probe_warm_invoke_ms_median"] = round(warm[2])
    timed_out = invoke({"sleep": 4})[1]
    r["timeout_2s_sleep_4s"] = timed_out
    r["memory_128mb_alloc_400mb"] = invoke({"alloc_mb": 400})[1]

    r["iam"] = _iam_probe(lam, iam, copy_bucket)
    r["iam_enforced"] = r["iam"]["enforced"]

    # S3 event key: the probe (now allowed to write to the copy bucket) copies its S3 event into it.
    lam.add_permission(
        FunctionName="fidelity-probe", StatementId="s3", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"
    )
    arn = lam.get_function(FunctionName="fidelity-probe")["Configuration"]["FunctionArn"]
    s3.put_bucket_notification_configuration(
        Bucket=events_bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    key = "dir/a b+c ü.txt"
    s3.put_object(Bucket=events_bucket, Key=key, Body=b"x")
    copied = _wait(lambda: _get(s3, copy_bucket, "event.json"), 60)
    if copied:
        raw_key = json.loads(copied)["Records"][0]["s3"]["object"]["key"]
        r["s3_event_key"] = {"uploaded": key, "in_event": raw_key, "unquote_plus": urllib.parse.unquote_plus(raw_key)}
    else:
        r["s3_event_key"] = None

    # The pipeline: first upload (cold), a second one (warm), logs, envelope, then a burst.
    source, destination = out["source_bucket"], out["destination_bucket"]

    def landed(k: str) -> bool:
        return _head(s3, destination, k) or _head(s3, out["failed_bucket"], k)

    for label in ("pipeline_cold_upload_to_landed_ms", "pipeline_warm_upload_to_landed_ms"):
        k = f"fidelity/{label}.jpg"
        t0 = time.monotonic()
        s3.put_object(Bucket=source, Key=k, Body=_jpeg(1024, 768, 1))
        r[label] = round((time.monotonic() - t0) * 1000) if _wait(lambda k=k: landed(k), 180, 0.05) else None

    bodies = [_jpeg(1024, 768, i) for i in range(burst)]
    t0 = time.monotonic()
    for i, body in enumerate(bodies):
        s3.put_object(Bucket=source, Key=f"burst/{i}.jpg", Body=body)
    done = _wait(lambda: all(landed(f"burst/{i}.jpg") for i in range(burst)), 600, 0.2)
    elapsed = time.monotonic() - t0
    r["burst"] = {
        "images": burst,
        "seconds": round(elapsed, 1),
        "images_per_s": round(burst / elapsed, 2) if done else None,
    }

    group = out["log_group_name"]
    events = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    r["logs"] = {
        "function_summary_lines": sum('"image processed"' in m for m in events),
        "start": sum(m.startswith("START ") for m in events),
        "end": sum(m.startswith("END ") for m in events),
        "report": sum(m.startswith("REPORT ") for m in events),
        "report_example": next((m for m in events if m.startswith("REPORT ")), None),
        "init_duration_reported": any("Init Duration" in m for m in events),
    }
    messages = sqs.receive_message(QueueUrl=out["notifications_queue_url"], MaxNumberOfMessages=1, WaitTimeSeconds=5)
    body = json.loads(messages["Messages"][0]["Body"]) if messages.get("Messages") else {}
    r["sns_envelope_keys"] = sorted(body) if isinstance(body, dict) else None

    # Async retries and the on-failure destination.
    env = lam.get_function_configuration(FunctionName=out["function_name"])["Environment"]["Variables"]
    broken = {**env, "DEST_BUCKET": "no-such-destination", "FAILED_BUCKET": "no-such-failed"}
    lam.update_function_configuration(FunctionName=out["function_name"], Environment={"Variables": broken})
    _wait(
        lambda: (
            lam.get_function(FunctionName=out["function_name"])["Configuration"].get("LastUpdateStatus")
            in (None, "Successful")
        )
    )
    t0 = time.monotonic()
    s3.put_object(Bucket=source, Key="fidelity/dlq.jpg", Body=_jpeg(320, 240, 3))

    def dead_letter() -> dict[str, Any] | None:
        got = sqs.receive_message(QueueUrl=out["dlq_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            return json.loads(message["Body"])
        return None

    record = _wait(dead_letter, 180, 0)
    lam.update_function_configuration(FunctionName=out["function_name"], Environment={"Variables": env})
    r["async_on_failure"] = (
        {
            "seconds_to_destination": round(time.monotonic() - t0, 1),
            "condition": record.get("requestContext", {}).get("condition"),
            "approximateInvokeCount": record.get("requestContext", {}).get("approximateInvokeCount"),
            "errorType": (record.get("responsePayload") or {}).get("errorType"),
        }
        if record
        else None
    )
    return r


def _iam_probe(lam: Any, iam: Any, bucket: str) -> dict[str, Any]:
    """Ask the probe (role ``fidelity-probe``, no policy) to write to ``bucket``; grant that bucket only, ask again.

    Each answer is the probe's own: ``allowed`` or the error code its ``PutObject`` got, with the access key id the
    function sees and whether it has a session token (a session of its role, as on Lambda, or the account's keys).
    ``enforced`` is ``True`` when the write without a policy was refused and the scoped grant let it through,
    ``False`` when the write without a policy went through, otherwise a sentence saying what happened.
    """

    def copy(key: str) -> dict[str, Any]:
        response = lam.invoke(FunctionName="fidelity-probe", Payload=json.dumps({"copy": key}).encode())
        body = json.loads(response["Payload"].read() or b"null")
        return body if isinstance(body, dict) and "copy" in body else {"copy": f"no answer: {body}"}

    result: dict[str, Any] = {"no_policy": copy("iam/no-policy.json")}
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }
    iam.put_role_policy(RoleName="fidelity-probe", PolicyName="copy-bucket-only", PolicyDocument=json.dumps(grant))
    result["scoped_grant"] = copy("iam/scoped-grant.json")
    refused, granted = result["no_policy"]["copy"] != "allowed", result["scoped_grant"]["copy"] == "allowed"
    if not refused:
        result["enforced"] = False
    elif granted:
        result["enforced"] = True
    else:
        result["enforced"] = "refused without a policy and with a grant of the bucket: look at the answers"
    return result


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.ClientError:
        return None


def _head(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Measure each backend asked for; print and write the results."""
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=("embedded", "ministack"))
    parser.add_argument("--burst", type=int, default=20, help="uploads at once for the throughput figure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    results = {}
    if RESULTS.is_file():
        results = json.loads(RESULTS.read_text())
    for backend in args.backend or ["embedded", "ministack"]:
        log.info("measuring %s ...", backend)
        results[backend] = measure(backend, args.burst)
        print(json.dumps(results[backend], indent=2))
        results["machine"] = {"cpus": os.cpu_count()}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
