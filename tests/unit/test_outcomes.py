"""Outcome guarantees under faults, through the real handler against moto in-process.

Faults are injected on the function's own boto3 clients with botocore's event system (``before-call`` returns an
error response, ``after-call`` raises a timeout after the call happened): nothing of ours is mocked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import index
import pytest
from botocore.exceptions import ReadTimeoutError
from image_compressor import aws, budget, idempotency, service
from image_compressor.notification import parse_message
from image_compressor.result import NOTIFIED_TAG
from image_compressor.service import UnprocessedObjectsError

from tests.jpegs import photo_jpeg
from tests.mocked import DESTINATION, FAILED, SOURCE, Cloud, LambdaContext, load_event

KEY = "fotos/über uns+mehr.jpg"


def upload_event(cloud: Cloud, key: str, sequencer: str | None) -> dict[str, Any]:
    """An S3 put event for the current source object ``key`` (its real ETag), with ``sequencer`` or none."""
    event = load_event("put_simple.json")
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = quote_plus(key)
    if sequencer is None:
        del obj["sequencer"]
    else:
        obj["sequencer"] = sequencer
    return cloud.stamp(event)


def summaries(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "image processed"]


def payloads(cloud: Cloud) -> list[dict[str, Any]]:
    return [parse_message(m["Body"]) for m in cloud.messages(cloud.raw_queue_url)]


class Crash(BaseException):
    """Stands for the process dying (timeout, out of memory): nothing of the function catches it."""


@dataclass
class Faults:
    """Errors injected into the function's own clients; each hook stays until removed."""

    hooks: list[tuple[Any, str, Any]]

    def error(
        self, service: str, operation: str, code: str, status: int, times: int | None = None, bucket: str | None = None
    ) -> None:
        """Make ``operation`` answer with AWS error ``code``/HTTP ``status`` (``times`` calls, or every call).

        ``bucket`` limits it to S3 requests on that bucket (``before-call`` sees the serialised request: the bucket
        is in its URL).
        """
        left = [times]

        def answer(params: dict[str, Any], **_: Any) -> Any:
            if bucket is not None and bucket not in params["url"]:
                return None
            if left[0] is not None:
                if left[0] <= 0:
                    return None
                left[0] -= 1
            response = {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {}}
            response["ResponseMetadata"]["HTTPStatusCode"] = status
            return _Http(status), response

        self.hook(service, f"before-call.{service}.{operation}", answer)

    def raise_before(self, service: str, operation: str, exc: BaseException) -> None:
        """Raise ``exc`` instead of calling ``operation`` (the call never reaches the service)."""

        def boom(**_: Any) -> None:
            raise exc

        self.hook(service, f"before-call.{service}.{operation}", boom)

    def raise_after(self, service: str, operation: str, exc: BaseException) -> None:
        """Raise ``exc`` after ``operation`` took effect (a timeout on the response)."""

        def boom(**_: Any) -> None:
            raise exc

        self.hook(service, f"after-call.{service}.{operation}", boom)

    def clear(self) -> None:
        for client, event, handler in self.hooks:
            client.meta.events.unregister(event, handler)
        self.hooks.clear()

    def hook(self, service: str, event: str, handler: Any) -> None:
        """Register ``handler`` for botocore ``event`` on the function's ``service`` client until :meth:`clear`."""
        client = aws.client(service)
        client.meta.events.register(event, handler)
        self.hooks.append((client, event, handler))


@dataclass
class _Http:
    status_code: int
    headers: dict[str, str] | None = None
    content: bytes = b""


@pytest.fixture
def faults(cloud: Cloud) -> Iterator[Faults]:
    injected = Faults([])
    yield injected
    injected.clear()


def read_timeout() -> ReadTimeoutError:
    return ReadTimeoutError(endpoint_url="https://s3.eu-west-1.amazonaws.com/image-destination")


# --- 1. idempotency per event ------------------------------------------------------------------------------------


def test_the_source_and_the_two_earlier_outcomes_are_requested_at_once(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    # GetObject of the source in the handler's thread, HeadObject of the destination object and the failed copy in
    # two lookup threads meanwhile: one round trip instead of three before the body is read.
    seen: list[tuple[str, str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, params["Bucket"], threading.current_thread().name))

    cloud.put_source(KEY, photo_jpeg(320, 240))
    faults.hook("s3", "provide-client-params.s3", record)
    [result] = index.handler(upload_event(cloud, KEY, "01"), lambda_context)["results"]
    assert result["status"] == "compressed"
    first_three = {(operation, bucket): thread for operation, bucket, thread in seen[:3]}
    assert first_three.keys() == {("GetObject", SOURCE), ("HeadObject", DESTINATION), ("HeadObject", FAILED)}
    assert first_three["GetObject", SOURCE] == threading.current_thread().name
    lookups = {f"records_{i}" for i in range(idempotency._LOOKUPS)}
    assert {first_three["HeadObject", DESTINATION], first_three["HeadObject", FAILED]} <= lookups
    assert [operation for operation, bucket, _ in seen].count("GetObject") == 1  # no second read of the source


def test_a_duplicate_drops_the_source_body_unread(cloud: Cloud, lambda_context: LambdaContext, faults: Faults) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    event = upload_event(cloud, KEY, "01")
    index.handler(event, lambda_context)
    bodies: list[Any] = []

    def keep(parsed: dict[str, Any], **_: Any) -> None:
        bodies.append(parsed["Body"])

    faults.hook("s3", "after-call.s3.GetObject", keep)
    [again] = index.handler(event, lambda_context)["results"]
    assert again["duplicate"] is True
    [body] = bodies
    assert body._amount_read == 0 and body._raw_stream.closed  # dropped unread, not downloaded


def test_a_transient_error_looking_up_an_earlier_outcome_leaves_the_event_for_a_retry(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    faults.error("s3", "HeadObject", "SlowDown", 503, bucket=FAILED)
    with pytest.raises(UnprocessedObjectsError, match="earlier outcome"):
        index.handler(upload_event(cloud, KEY, "01"), lambda_context)
    faults.clear()
    assert cloud.keys(DESTINATION) == [] and cloud.keys(FAILED) == []
    # The retry, with S3 answering again, processes it.
    [result] = index.handler(upload_event(cloud, KEY, "01"), lambda_context)["results"]
    assert result["status"] == "compressed"


def test_new_upload_of_the_same_bytes_is_notified_and_reuses_the_output(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    data = photo_jpeg(640, 480, quality=95)
    cloud.put_source(KEY, data)
    first = index.handler(upload_event(cloud, KEY, "01"), lambda_context)["results"][0]
    output, _ = cloud.read(DESTINATION, KEY)
    capsys.readouterr()

    cloud.put_source(KEY, data)  # the same bytes again: a new upload, a new event
    second = index.handler(upload_event(cloud, KEY, "02"), lambda_context)["results"][0]

    assert (second["status"], second["duplicate"], second["reused"]) == ("compressed", False, True)
    assert second["event_id"] != first["event_id"]
    again, head = cloud.read(DESTINATION, KEY)
    assert again == output  # not re-encoded
    assert head["Metadata"]["source-sequencer"] == "02"
    assert head["Metadata"]["output-reused"] == "true"
    assert head["Metadata"]["source-event"] == second["event_id"]
    [first_message, second_message] = payloads(cloud)
    assert (first_message["reused"], second_message["reused"]) == (False, True)
    assert second_message["event_id"] == second["event_id"]
    [summary] = summaries(capsys.readouterr().out)
    assert "compress_ms" not in summary  # the core never ran


def test_a_failed_upload_uploaded_again_gets_a_new_outcome_and_message(
    cloud: Cloud, lambda_context: LambdaContext
) -> None:
    cloud.put_source(KEY, b"\x89PNG\r\n\x1a\n not really")
    index.handler(upload_event(cloud, KEY, "01"), lambda_context)
    cloud.put_source(KEY, b"\x89PNG\r\n\x1a\n not really")

    response = index.handler(upload_event(cloud, KEY, "02"), lambda_context)

    assert (response["results"][0]["status"], response["results"][0]["duplicate"]) == ("failed", False)
    assert [p["status"] for p in payloads(cloud)] == ["failed", "failed"]
    assert cloud.read(FAILED, KEY)[1]["Metadata"]["source-sequencer"] == "02"


def test_events_without_a_sequencer_use_the_object_and_a_retry_is_a_duplicate(
    cloud: Cloud, lambda_context: LambdaContext
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    event = upload_event(cloud, KEY, None)  # what moto and manual invocations send

    first = index.handler(event, lambda_context)["results"][0]
    second = index.handler(event, lambda_context)["results"][0]

    assert (first["status"], first["duplicate"]) == ("compressed", False)
    assert (second["status"], second["duplicate"]) == ("compressed", True)
    assert first["event_id"] == second["event_id"]
    assert len(payloads(cloud)) == 1
    meta = cloud.read(DESTINATION, KEY)[1]["Metadata"]
    assert "source-sequencer" not in meta and meta["source-last-modified"].isdigit()


# --- 2. transient vs permanent -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500), ("RequestTimeout", 400)])
def test_transient_write_errors_are_raised_and_nothing_goes_to_failed(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults, code: str, status: int
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    event = upload_event(cloud, KEY, "01")
    faults.error("s3", "PutObject", code, status)

    with pytest.raises(UnprocessedObjectsError, match=code):
        index.handler(event, lambda_context)

    assert cloud.keys(FAILED) == cloud.keys(DESTINATION) == []
    assert payloads(cloud) == []
    faults.clear()  # the fault clears; Lambda's retry of the same event succeeds
    assert index.handler(event, lambda_context)["results"][0]["status"] == "compressed"
    assert [p["status"] for p in payloads(cloud)] == ["compressed"]


def test_a_transient_read_error_of_the_source_is_raised(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    faults.error("s3", "GetObject", "ServiceUnavailable", 503)

    with pytest.raises(UnprocessedObjectsError):
        index.handler(upload_event(cloud, KEY, "01"), lambda_context)
    assert cloud.keys(FAILED) == []


def test_a_permanent_write_error_goes_to_the_failed_bucket(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    faults.error("s3", "PutObject", "AccessDenied", 403)

    response = index.handler(upload_event(cloud, KEY, "01"), lambda_context)

    assert response["results"][0]["status"] == "failed"
    assert "AccessDenied" in cloud.read(FAILED, KEY)[1]["Metadata"]["reason"]
    assert [p["status"] for p in payloads(cloud)] == ["failed"]


def test_an_ambiguous_write_that_happened_is_a_success_not_a_failure(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    faults.raise_after("s3", "PutObject", read_timeout())

    response = index.handler(upload_event(cloud, KEY, "01"), lambda_context)

    assert response["results"][0]["status"] == "compressed"
    assert cloud.keys(DESTINATION) == [KEY] and cloud.keys(FAILED) == []
    assert [p["status"] for p in payloads(cloud)] == ["compressed"]


def test_an_ambiguous_write_that_did_not_happen_is_retried(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    faults.raise_before("s3", "PutObject", read_timeout())

    with pytest.raises(UnprocessedObjectsError, match="ReadTimeoutError"):
        index.handler(upload_event(cloud, KEY, "01"), lambda_context)
    assert cloud.keys(DESTINATION) == cloud.keys(FAILED) == []
    assert payloads(cloud) == []


# --- 5. notifications are never lost ------------------------------------------------------------------------------


def test_a_crash_between_write_and_publish_is_published_once_by_the_retry(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    event = upload_event(cloud, KEY, "01")
    faults.raise_before("sns", "Publish", Crash())
    with pytest.raises(Crash):
        index.handler(event, lambda_context)
    assert cloud.keys(DESTINATION) == [KEY] and payloads(cloud) == []
    faults.clear()

    retried = index.handler(event, lambda_context)["results"][0]
    again = index.handler(event, lambda_context)["results"][0]

    assert (retried["duplicate"], again["duplicate"]) == (True, True)
    [payload] = payloads(cloud)
    assert payload["status"] == "compressed" and payload["event_id"] == retried["event_id"]
    tags = cloud.s3.get_object_tagging(Bucket=DESTINATION, Key=KEY)["TagSet"]
    assert {"Key": NOTIFIED_TAG, "Value": retried["event_id"]} in tags


def test_a_throttled_publish_is_raised_and_the_retry_publishes_once(
    cloud: Cloud, lambda_context: LambdaContext, faults: Faults
) -> None:
    cloud.put_source(KEY, b"not a jpeg at all")
    event = upload_event(cloud, KEY, "01")
    faults.error("sns", "Publish", "Throttling", 400)
    with pytest.raises(UnprocessedObjectsError, match="notification was not published"):
        index.handler(event, lambda_context)
    assert cloud.keys(FAILED) == [KEY]
    faults.clear()

    assert index.handler(event, lambda_context)["results"][0]["duplicate"] is True
    assert [p["status"] for p in payloads(cloud)] == ["failed"]


# --- 3. deadline and memory guards ----------------------------------------------------------------------------------


@dataclass
class TightContext(LambdaContext):
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def cold_container() -> Iterator[None]:
    """The outcome reserve of a container that has not written an outcome yet (as after a cold start)."""
    saved = service.OUTCOME_COSTS
    service.OUTCOME_COSTS = budget.OutcomeCosts()
    yield
    service.OUTCOME_COSTS = saved


def test_an_image_that_cannot_finish_in_a_1_s_timeout_fails_with_the_time_it_needs_and_the_setting(
    cloud: Cloud, cold_container: None
) -> None:
    cloud.put_source(KEY, photo_jpeg(3000, 2000))  # 6 MP: over a second of compute at 1024 MB

    response = index.handler(upload_event(cloud, KEY, "01"), TightContext(remaining_ms=1_000))

    reason = response["results"][0]["reason"]
    assert response["results"][0]["status"] == "failed"
    assert "not enough time" in reason and "it needs about" in reason and "Terraform variable timeout" in reason
    [payload] = payloads(cloud)
    assert payload["status"] == "failed" and payload["reason"] == reason
    assert cloud.keys(FAILED) == [KEY]


def test_a_small_image_compresses_under_a_3_s_timeout_and_a_1_s_one(cloud: Cloud, cold_container: None) -> None:
    for n, remaining in enumerate((3_000, 1_000)):
        key = f"small {n}.jpg"
        cloud.put_source(key, photo_jpeg(320, 240))

        response = index.handler(upload_event(cloud, key, f"0{n}"), TightContext(remaining_ms=remaining))

        assert response["results"][0]["status"] == "compressed", response
    assert [p["status"] for p in payloads(cloud)] == ["compressed", "compressed"]


def test_the_outcome_reserve_scales_with_the_timeout_and_follows_the_measured_writes() -> None:
    costs = budget.OutcomeCosts(remembered=3)

    assert [costs.reserve_ms(ms) for ms in (1_000, 3_000, 60_000, None)] == pytest.approx(
        [333.3, 1_000, 10_000, 10_000], abs=0.1
    )
    costs.record(120.0)
    costs.record(40.0)
    assert costs.reserve_ms(60_000) == 240.0  # twice the slowest write of this container
    assert costs.reserve_ms(300) == 100.0  # never more than a third of the invocation
    for _ in range(3):
        costs.record(10.0)
    assert costs.reserve_ms(60_000) == budget.MIN_RESERVE_MS  # the slow write is forgotten; a floor stays


def test_an_image_that_cannot_fit_in_memory_fails_with_a_reason(cloud: Cloud) -> None:
    cloud.put_source(KEY, photo_jpeg(1600, 1200))

    response = index.handler(upload_event(cloud, KEY, "01"), TightContext(memory_limit_in_mb=128))

    reason = response["results"][0]["reason"]
    assert "not enough memory" in reason and "memory_size" in reason and "128 MB" in reason
    assert cloud.keys(FAILED) == [KEY]


def test_too_many_scans_fail_before_decoding(
    cloud: Cloud, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_SCANS", "2")
    cloud.put_source(KEY, photo_jpeg(320, 240, progressive=True))

    response = index.handler(upload_event(cloud, KEY, "01"), lambda_context)

    assert "too many scans" in response["results"][0]["reason"]
    assert "MAX_SCANS" in cloud.read(FAILED, KEY)[1]["Metadata"]["reason"]


# --- 4. latest wins ----------------------------------------------------------------------------------------------


def test_an_event_for_a_replaced_version_does_not_overwrite_the_newer_output(
    cloud: Cloud, lambda_context: LambdaContext
) -> None:
    cloud.put_source(KEY, photo_jpeg(640, 480))
    old_event = upload_event(cloud, KEY, "01")
    cloud.put_source(KEY, photo_jpeg(320, 240))
    index.handler(upload_event(cloud, KEY, "02"), lambda_context)

    late = index.handler(old_event, lambda_context)["results"][0]

    assert late["status"] == "superseded"
    assert cloud.read(DESTINATION, KEY)[1]["Metadata"]["width"] == "320"
    assert [p["status"] for p in payloads(cloud)] == ["compressed"]


def test_an_older_event_of_the_same_bytes_is_superseded_by_sequencer(
    cloud: Cloud, lambda_context: LambdaContext
) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    index.handler(upload_event(cloud, KEY, "00FF"), lambda_context)

    late = index.handler(upload_event(cloud, KEY, "0F"), lambda_context)["results"][0]

    assert late["status"] == "superseded"
    assert cloud.read(DESTINATION, KEY)[1]["Metadata"]["source-sequencer"] == "00FF"
    assert len(payloads(cloud)) == 1


def test_a_newer_failure_removes_the_older_output_and_says_so(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source(KEY, photo_jpeg(320, 240))
    index.handler(upload_event(cloud, KEY, "01"), lambda_context)
    cloud.put_source(KEY, b"GIF89a not a jpeg")

    response = index.handler(upload_event(cloud, KEY, "02"), lambda_context)

    assert response["results"][0]["status"] == "failed"
    assert cloud.keys(DESTINATION) == []
    reason = cloud.read(FAILED, KEY)[1]["Metadata"]["reason"]
    assert "earlier upload of this key was removed" in reason
    messages = payloads(cloud)
    assert [p["status"] for p in messages] == ["compressed", "failed"]
    assert "earlier upload of this key was removed" in messages[1]["reason"]


def test_an_older_event_after_a_newer_failure_writes_nothing(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source(KEY, b"not a jpeg")
    index.handler(upload_event(cloud, KEY, "05"), lambda_context)

    late = index.handler(upload_event(cloud, KEY, "04"), lambda_context)["results"][0]

    assert late["status"] == "superseded"
    assert cloud.keys(DESTINATION) == []
    assert cloud.read(FAILED, KEY)[1]["Metadata"]["source-sequencer"] == "05"
    assert len(payloads(cloud)) == 1


# --- the glue's error classification -------------------------------------------------------------------------------


def test_aws_errors_say_whether_they_are_transient_and_whether_a_write_may_have_happened(
    cloud: Cloud, faults: Faults
) -> None:
    cases = {
        ("SlowDown", 503): (True, False),
        ("Throttling", 400): (True, False),
        ("InternalError", 500): (True, True),
        ("AccessDenied", 403): (False, False),
        ("NoSuchBucket", 404): (False, False),
    }
    for (code, status), expected in cases.items():
        faults.error("s3", "PutObject", code, status, times=1)
        with pytest.raises(aws.AwsError) as caught:
            aws.put_object(DESTINATION, KEY, b"x", {})
        assert (caught.value.transient, caught.value.ambiguous) == expected, code
        faults.clear()
    faults.raise_before("s3", "PutObject", read_timeout())
    with pytest.raises(aws.AwsError) as caught:
        aws.put_object(DESTINATION, KEY, b"x", {})
    assert (caught.value.transient, caught.value.ambiguous) == (True, True)


def test_conditional_writes_refuse_a_changed_destination(cloud: Cloud) -> None:
    first = aws.put_object(DESTINATION, KEY, b"one", {}, if_absent=True)
    with pytest.raises(aws.AwsError) as caught:
        aws.put_object(DESTINATION, KEY, b"two", {}, if_absent=True)
    assert caught.value.precondition_failed
    with pytest.raises(aws.AwsError) as caught:
        aws.put_object(DESTINATION, KEY, b"two", {}, if_match="0" * 32)
    assert caught.value.precondition_failed
    aws.put_object(DESTINATION, KEY, b"two", {}, if_match=first)
    assert aws.delete_object(DESTINATION, KEY, if_match=first) is False  # replaced meanwhile: not deleted
    assert cloud.keys(DESTINATION) == [KEY]


def test_the_clients_have_bounded_timeouts_and_standard_retries(cloud: Cloud) -> None:
    config = aws.client("s3").meta.config
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT_S, aws.READ_TIMEOUT_S)
    assert config.retries == {"mode": "standard", "total_max_attempts": aws.MAX_ATTEMPTS}


def test_the_header_walk_counts_scans() -> None:
    from image_compressor import jpegfile

    assert jpegfile.parse(photo_jpeg(64, 48, progressive=False)).scans == 1
    assert jpegfile.parse(photo_jpeg(64, 48, progressive=True)).scans > 2
