"""The Lambda handler against moto's in-process S3, SNS and SQS: outputs, failures, notifications, logs, retries."""

from __future__ import annotations

import io
import json
import struct
from typing import Any
from urllib.parse import quote_plus

import index
import pytest
from image_compressor import aws
from image_compressor.core import compress
from image_compressor.notification import ascii_safe, parse_message
from image_compressor.result import Status
from image_compressor.service import UnprocessedObjectsError
from image_compressor.settings import CompressionOptions, Settings, SettingsError
from PIL import Image

from tests.jpegs import photo_image, photo_jpeg
from tests.mocked import DESTINATION, FAILED, SOURCE, Cloud, LambdaContext, load_event

OUTPUT_METADATA = {
    "original-bytes",
    "output-bytes",
    "quality",
    "processing-ms",
    "status",
    "source-etag",
    "settings",
    "width",
    "height",
}


def log_records(text: str) -> list[dict[str, Any]]:
    """Return every JSON object written to stdout (log lines and EMF metric blobs)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def summaries(text: str) -> list[dict[str, Any]]:
    """Return the summary log lines (one per object)."""
    return [r for r in log_records(text) if r.get("message") == "image processed"]


def emitted_metrics(text: str) -> dict[str, list[float]]:
    """Return every EMF metric emitted, by name, with the namespace checked."""
    found: dict[str, list[float]] = {}
    for record in log_records(text):
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "ImagePipeline"
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                found.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return found


def event_for(key: str, bucket: str = SOURCE, sequencer: str | None = "0065A1B2C3D4E5F601") -> dict[str, Any]:
    """Return the simple put event rewritten for ``key`` (URL-encoded as S3 does) in ``bucket``.

    ``sequencer`` replaces the record's (a new upload has a higher one); ``None`` removes it, as in moto's events and
    manual invocations.
    """
    event = load_event("put_simple.json")
    event["Records"][0]["s3"]["object"]["key"] = quote_plus(key)
    event["Records"][0]["s3"]["bucket"]["name"] = bucket
    if sequencer is None:
        del event["Records"][0]["s3"]["object"]["sequencer"]
    else:
        event["Records"][0]["s3"]["object"]["sequencer"] = sequencer
    return event


def pixel_bomb(width: int, height: int) -> bytes:
    """Return a small baseline JPEG whose frame header claims ``width`` x ``height`` pixels."""
    data = bytearray(photo_jpeg(64, 48, progressive=False))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    photo_image(64, 48).save(buf, "PNG")
    return buf.getvalue()


# --- success ---------------------------------------------------------------------------------------------------


def test_success_writes_smaller_jpeg_with_metadata_and_publishes(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    original = photo_jpeg(640, 480, quality=95)
    etag = cloud.put_source("photos/cat.jpg", original)

    response = index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert response["processed"] == 1
    assert response["results"][0]["status"] == "compressed"
    data, head = cloud.read(DESTINATION, "photos/cat.jpg")
    assert len(data) < len(original)
    assert head["ContentType"] == "image/jpeg"
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.size) == ("JPEG", (640, 480))
    meta = head["Metadata"]
    assert OUTPUT_METADATA <= set(meta)
    assert meta["status"] == "compressed"
    assert meta["source-etag"] == etag
    assert meta["settings"] == Settings.from_env().fingerprint()
    assert (meta["original-bytes"], meta["output-bytes"]) == (str(len(original)), str(len(data)))
    quality = compress(original).result.quality  # the quality the core's SSIM search picks for this image
    assert (meta["width"], meta["height"], meta["quality"]) == ("640", "480", str(quality))
    assert "reason" not in meta
    # The original stays in the source bucket; nothing in the failed bucket.
    assert cloud.read(SOURCE, "photos/cat.jpg")[0] == original
    assert cloud.keys(FAILED) == []

    # SNS: raw delivery carries the readable text and the JSON; the envelope carries subject and attributes.
    raw = cloud.messages(cloud.raw_queue_url)
    envelope = cloud.messages(cloud.envelope_queue_url)
    assert len(raw) == len(envelope) == 1
    body = raw[0]["Body"]
    assert body.startswith("Image compressed: photos/cat.jpg\n")
    assert "Output:     s3://image-destination/photos/cat.jpg" in body
    payload = parse_message(body)
    assert parse_message(envelope[0]["Body"]) == payload
    assert payload["status"] == "compressed"
    assert (payload["bucket"], payload["key"]) == (SOURCE, "photos/cat.jpg")
    assert (payload["destination_bucket"], payload["failed_bucket"]) == (DESTINATION, None)
    assert (payload["input_bytes"], payload["output_bytes"]) == (len(original), len(data))
    assert payload["saved_pct"] == round((1 - len(data) / len(original)) * 100, 1)
    assert (payload["width"], payload["height"], payload["quality"]) == (640, 480, quality)
    assert payload["source_etag"] == etag
    assert payload["reason"] is None
    assert payload["time"].endswith("Z")
    sns_envelope = json.loads(envelope[0]["Body"])
    assert sns_envelope["Subject"] == "Image compressed: photos/cat.jpg"
    assert sns_envelope["MessageAttributes"]["status"]["Value"] == "compressed"
    assert sns_envelope["MessageAttributes"]["key"]["Value"] == "photos/cat.jpg"
    assert raw[0]["MessageAttributes"]["status"]["StringValue"] == "compressed"

    out = capsys.readouterr().out
    [summary] = summaries(out)
    assert summary["service"] == "image-compressor"
    assert (summary["bucket"], summary["key"], summary["status"]) == (SOURCE, "photos/cat.jpg", "compressed")
    assert (summary["input_bytes"], summary["output_bytes"]) == (len(original), len(data))
    assert summary["reason"] == ""
    assert summary["duplicate"] is False
    # One time for the object: the message, its text, the object metadata and the log line show the same number,
    # the whole handling up to the write (S3 reads and compression included; the log adds the write itself).
    ms = summary["ms"]
    assert ms > 0 and payload["ms"] == ms and float(meta["processing-ms"]) == ms
    assert f"Time:       {ms} ms" in body
    assert 0 < summary["compress_ms"] <= ms <= summary["total_ms"]
    metrics = emitted_metrics(out)
    assert metrics["ImagesCompressed"] == [1.0]
    assert metrics["BytesSaved"] == [float(len(original) - len(data))]
    assert len(metrics["ProcessingTime"]) == 1
    assert "ImagesFailed" not in metrics


def test_output_that_would_not_be_smaller_is_kept_original(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # Already written small by our own encoder: re-encoding it in the default quality range cannot shrink it.
    original = compress(photo_jpeg(320, 240), CompressionOptions(quality=20, target_ssim=None)).data
    cloud.put_source("photos/cat.jpg", original)

    response = index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert response["results"][0]["status"] == "kept-original"
    data, head = cloud.read(DESTINATION, "photos/cat.jpg")
    assert data == original
    assert head["Metadata"]["status"] == "kept-original"
    assert head["Metadata"]["reason"]
    payload = parse_message(cloud.messages(cloud.raw_queue_url)[0]["Body"])
    assert payload["status"] == "kept-original"
    assert payload["saved_pct"] == 0.0
    [summary] = summaries(capsys.readouterr().out)
    assert summary["status"] == "kept-original"


# --- failures ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "make", "env"),
    [
        ("not-jpeg", png_bytes, {}),
        ("corrupt", lambda: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, {}),
        ("truncated", lambda: photo_jpeg(640, 480)[:6000], {}),
        ("empty", lambda: b"", {}),
        ("pixel-bomb-over-cap", lambda: pixel_bomb(9000, 9000), {}),
        ("pixel-bomb-huge", lambda: pixel_bomb(60000, 60000), {}),
        ("too-large", lambda: photo_jpeg(320, 240), {"MAX_OBJECT_BYTES": "1000"}),
    ],
)
def test_bad_input_goes_to_failed_bucket_with_reason(
    cloud: Cloud,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    make: Any,
    env: dict[str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    original = make()
    etag = cloud.put_source("photos/cat.jpg", original, content_type="image/jpeg")
    if case == "too-large":
        reason = "larger than MAX_OBJECT_BYTES=1000, so it was not downloaded"
    else:  # the core names the problem; the function carries its words everywhere unchanged
        core_result = compress(original, CompressionOptions()).result
        assert core_result.status is Status.FAILED and core_result.reason
        reason = core_result.reason

    response = index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert response["results"][0]["status"] == "failed"
    copied, head = cloud.read(FAILED, "photos/cat.jpg")
    assert copied == original
    assert head["ContentType"] == "image/jpeg"
    meta = head["Metadata"]
    assert meta["status"] == "failed"
    assert meta["source-etag"] == etag
    assert meta["settings"] == Settings.from_env().fingerprint()
    assert ascii_safe(reason) in meta["reason"]
    assert cloud.keys(DESTINATION) == []
    assert cloud.read(SOURCE, "photos/cat.jpg")[0] == original

    [message] = cloud.messages(cloud.envelope_queue_url)
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "Image compression failed: photos/cat.jpg"
    assert envelope["MessageAttributes"]["status"]["Value"] == "failed"
    payload = parse_message(message["Body"])
    assert payload["status"] == "failed"
    assert (payload["failed_bucket"], payload["destination_bucket"]) == (FAILED, None)
    assert reason in payload["reason"]
    assert payload["input_bytes"] == len(original)
    assert "Original:   copied to s3://image-failed/photos/cat.jpg" in envelope["Message"]

    out = capsys.readouterr().out
    [summary] = summaries(out)
    assert summary["status"] == "failed"
    assert summary["level"] == "WARNING"
    assert reason in summary["reason"]
    ms = summary["ms"]
    assert ms > 0 and payload["ms"] == ms and float(meta["processing-ms"]) == ms
    assert f"Time:       {ms} ms" in envelope["Message"]
    assert ms <= summary["total_ms"]
    assert ("compress_ms" in summary) == (case != "too-large")  # the core never ran on an object over the cap
    assert emitted_metrics(out)["ImagesFailed"] == [1.0]


# --- keys --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_file", "key"),
    [
        ("put_key_percent20.json", "holiday photos/beach day.jpg"),
        ("put_key_plus_space.json", "my photos/summer day.jpg"),
        ("put_key_plus_sign.json", "c++/a+b.jpg"),
        ("put_key_unicode.json", "fotos/café ☕.jpg"),
    ],
)
def test_encoded_keys_are_decoded(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str], event_file: str, key: str
) -> None:
    cloud.put_source(key, photo_jpeg(320, 240))

    response = index.handler(cloud.stamp(load_event(event_file)), lambda_context)

    assert response["results"][0]["key"] == key
    assert response["results"][0]["status"] == "compressed"
    assert cloud.keys(DESTINATION) == [key]
    [message] = cloud.messages(cloud.envelope_queue_url)
    assert parse_message(message["Body"])["key"] == key
    subject = json.loads(message["Body"])["Subject"]
    assert subject.isascii() and subject.startswith("Image compressed: ")
    [summary] = summaries(capsys.readouterr().out)
    assert summary["key"] == key


def test_long_unicode_key_gets_a_short_ascii_subject(cloud: Cloud, lambda_context: LambdaContext) -> None:
    key = "álbum/" + "ñ" * 200 + ".jpg"
    cloud.put_source(key, photo_jpeg(160, 120))

    index.handler(cloud.stamp(event_for(key)), lambda_context)

    [message] = cloud.messages(cloud.envelope_queue_url)
    subject = json.loads(message["Body"])["Subject"]
    assert subject.isascii()
    assert len(subject) < 100
    assert subject.startswith("Image compressed: album/nnn") and subject.endswith("...")
    assert parse_message(message["Body"])["key"] == key


# --- events with several records ----------------------------------------------------------------------------------


def test_every_record_of_a_multi_record_event_is_processed(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ["batch/first.jpg", "batch/second image.JPG", "batch/über drei.jpeg"]
    cloud.put_source(keys[0], photo_jpeg(320, 240))
    cloud.put_source(keys[1], photo_jpeg(320, 240))
    cloud.put_source(keys[2], b"this is not an image")

    response = index.handler(cloud.stamp(load_event("multi_record.json")), lambda_context)

    assert [(r["key"], r["status"]) for r in response["results"]] == [
        (keys[0], "compressed"),
        (keys[1], "compressed"),
        (keys[2], "failed"),
    ]
    assert sorted(cloud.keys(DESTINATION)) == sorted([keys[0], keys[1]])
    assert cloud.keys(FAILED) == [keys[2]]
    assert cloud.read(FAILED, keys[2])[0] == b"this is not an image"
    payloads = [parse_message(m["Body"]) for m in cloud.messages(cloud.raw_queue_url)]
    assert sorted((p["key"], p["status"]) for p in payloads) == sorted(
        [(keys[0], "compressed"), (keys[1], "compressed"), (keys[2], "failed")]
    )
    out = capsys.readouterr().out
    assert [(s["key"], s["status"]) for s in summaries(out)] == [(r["key"], r["status"]) for r in response["results"]]
    metrics = emitted_metrics(out)
    assert metrics["ImagesCompressed"] == [1.0, 1.0]
    assert metrics["ImagesFailed"] == [1.0]


def test_records_other_than_object_created_are_ignored_with_a_log_line(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.put_source("mixed/kept.jpg", photo_jpeg(320, 240))
    cloud.put_source("mixed/restored.jpg", photo_jpeg(320, 240))

    response = index.handler(cloud.stamp(load_event("mixed_event_types.json")), lambda_context)

    assert [r["key"] for r in response["results"]] == ["mixed/kept.jpg"]
    assert cloud.keys(DESTINATION) == ["mixed/kept.jpg"]
    records = log_records(capsys.readouterr().out)
    ignored = [r for r in records if str(r.get("message", "")).startswith("ignored record")]
    assert sorted(r["event_name"] for r in ignored) == ["ObjectRemoved:Delete", "ObjectRestore:Completed"]
    assert len([r for r in records if r.get("message") == "image processed"]) == 1


def test_an_event_without_records_is_ignored(
    lambda_context: LambdaContext, cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    assert index.handler({"hello": "world"}, lambda_context) == {"processed": 0, "results": []}
    records = log_records(capsys.readouterr().out)
    assert any("not an S3 notification" in r.get("message", "") for r in records)
    assert cloud.messages(cloud.raw_queue_url) == []


# --- retries are idempotent --------------------------------------------------------------------------------------


def test_retried_event_writes_nothing_twice_and_publishes_once(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    for bucket in (DESTINATION, FAILED):
        cloud.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    cloud.put_source("batch/first.jpg", photo_jpeg(320, 240))
    cloud.put_source("batch/second image.JPG", b"not a jpeg")
    cloud.put_source("batch/über drei.jpeg", photo_jpeg(320, 240))
    event = load_event("multi_record.json")

    first = index.handler(cloud.stamp(event), lambda_context)
    assert len(cloud.messages(cloud.raw_queue_url)) == 3
    capsys.readouterr()
    second = index.handler(cloud.stamp(event), lambda_context)

    assert [r["status"] for r in second["results"]] == [r["status"] for r in first["results"]]
    assert all(r["duplicate"] for r in second["results"])
    assert second["results"][0]["output_bytes"] == first["results"][0]["output_bytes"]
    for bucket in (DESTINATION, FAILED):
        versions = cloud.s3.list_object_versions(Bucket=bucket).get("Versions", [])
        assert len(versions) == len(cloud.keys(bucket)) > 0
    assert cloud.messages(cloud.raw_queue_url) == []
    out = capsys.readouterr().out
    assert [(s["status"], s["duplicate"]) for s in summaries(out)] == [
        ("compressed", True),
        ("failed", True),
        ("compressed", True),
    ]
    assert emitted_metrics(out)["DuplicatesSkipped"] == [1.0, 1.0, 1.0]


def test_new_settings_apply_to_new_events_and_new_content_is_processed_again(
    cloud: Cloud, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.s3.put_bucket_versioning(Bucket=DESTINATION, VersioningConfiguration={"Status": "Enabled"})
    cloud.put_source("photos/cat.jpg", photo_jpeg(640, 480))
    index.handler(cloud.stamp(event_for("photos/cat.jpg", sequencer="0A")), lambda_context)

    # A retry of the same event stays a duplicate, whatever the settings say now.
    monkeypatch.setenv("JPEG_QUALITY", "60")
    monkeypatch.setenv("TARGET_SSIM", "off")
    again = index.handler(cloud.stamp(event_for("photos/cat.jpg", sequencer="0A")), lambda_context)
    assert again["results"][0]["duplicate"] is True
    # A new upload of the same bytes under new settings is compressed again with them.
    cloud.put_source("photos/cat.jpg", photo_jpeg(640, 480))
    newer = index.handler(cloud.stamp(event_for("photos/cat.jpg", sequencer="0B")), lambda_context)
    assert (newer["results"][0]["duplicate"], newer["results"][0]["reused"]) == (False, False)
    assert cloud.read(DESTINATION, "photos/cat.jpg")[1]["Metadata"]["quality"] == "60"

    new_etag = cloud.put_source("photos/cat.jpg", photo_jpeg(320, 240))
    index.handler(cloud.stamp(event_for("photos/cat.jpg", sequencer="0C")), lambda_context)
    _, head = cloud.read(DESTINATION, "photos/cat.jpg")
    assert head["Metadata"]["source-etag"] == new_etag
    assert head["Metadata"]["source-sequencer"] == "0C"
    assert head["Metadata"]["width"] == "320"
    assert len(cloud.s3.list_object_versions(Bucket=DESTINATION)["Versions"]) == 3
    assert len(cloud.messages(cloud.raw_queue_url)) == 3


# --- SNS, destination and failed bucket failures -----------------------------------------------------------------


@pytest.mark.parametrize("topic", ["deleted", "arn:aws:sns:eu-west-1:123456789012:no-such-topic", "not-an-arn"])
def test_failed_publish_never_turns_success_into_failure(
    cloud: Cloud,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    topic: str,
) -> None:
    if topic == "deleted":
        cloud.sns.delete_topic(TopicArn=cloud.topic_arn)
    else:
        monkeypatch.setenv("SNS_TOPIC_ARN", topic)
    cloud.put_source("photos/cat.jpg", photo_jpeg(320, 240))

    response = index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert response["results"][0]["status"] == "compressed"
    assert cloud.keys(DESTINATION) == ["photos/cat.jpg"]
    out = capsys.readouterr().out
    warnings = [r for r in log_records(out) if "notification was not published" in r.get("message", "")]
    assert len(warnings) == 1 and warnings[0]["level"] == "WARNING"
    assert [s["status"] for s in summaries(out)] == ["compressed"]
    assert emitted_metrics(out)["NotificationsFailed"] == [1.0]


def test_destination_write_failure_copies_original_to_failed_bucket(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.s3.delete_bucket(Bucket=DESTINATION)
    original = photo_jpeg(320, 240)
    cloud.put_source("photos/cat.jpg", original)

    response = index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert response["results"][0]["status"] == "failed"
    copied, head = cloud.read(FAILED, "photos/cat.jpg")
    assert copied == original
    assert "could not write the output to the destination bucket" in head["Metadata"]["reason"]
    assert "NoSuchBucket" in head["Metadata"]["reason"]
    payload = parse_message(cloud.messages(cloud.raw_queue_url)[0]["Body"])
    assert payload["status"] == "failed"
    assert "destination bucket" in payload["reason"]
    [summary] = summaries(capsys.readouterr().out)
    assert summary["status"] == "failed"


def test_neither_destination_nor_failed_bucket_raises_after_all_records(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.s3.delete_bucket(Bucket=DESTINATION)
    cloud.s3.delete_bucket(Bucket=FAILED)
    keys = ["batch/first.jpg", "batch/second image.JPG", "batch/über drei.jpeg"]
    for key in keys:
        cloud.put_source(key, photo_jpeg(160, 120))

    with pytest.raises(UnprocessedObjectsError) as caught:
        index.handler(cloud.stamp(load_event("multi_record.json")), lambda_context)

    assert [o.key for o in caught.value.outcomes] == keys
    for key in keys:
        assert key in str(caught.value)
    assert sorted(cloud.keys(SOURCE)) == sorted(keys)
    assert cloud.messages(cloud.raw_queue_url) == []
    out = capsys.readouterr().out
    assert [s["status"] for s in summaries(out)] == ["error"] * 3
    final = [r for r in log_records(out) if "unprocessed_keys" in r]
    assert len(final) == 1 and final[0]["unprocessed_keys"] == keys
    assert emitted_metrics(out)["ObjectsUnprocessed"] == [3.0]


# --- recursion guard and configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["DEST_BUCKET", "FAILED_BUCKET"])
def test_recursion_guard_refuses_and_writes_nothing(
    cloud: Cloud,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, SOURCE)
    cloud.s3.put_bucket_versioning(Bucket=SOURCE, VersioningConfiguration={"Status": "Enabled"})
    cloud.put_source("photos/cat.jpg", photo_jpeg(320, 240))

    with pytest.raises(UnprocessedObjectsError, match="photos/cat.jpg"):
        index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert len(cloud.s3.list_object_versions(Bucket=SOURCE)["Versions"]) == 1
    assert cloud.keys(DESTINATION) == cloud.keys(FAILED) == []
    assert cloud.messages(cloud.raw_queue_url) == []
    out = capsys.readouterr().out
    [summary] = summaries(out)
    assert summary["status"] == "refused"
    assert f"{variable} is the source bucket" in summary["reason"] and "recursion" in summary["reason"]


def test_recursion_guard_still_processes_the_other_records(cloud: Cloud, lambda_context: LambdaContext) -> None:
    cloud.put_source("photos/cat.jpg", photo_jpeg(320, 240))
    event = load_event("put_simple.json")
    looping = event_for("photos/loop.jpg", bucket=DESTINATION)["Records"][0]
    event["Records"].insert(0, looping)

    with pytest.raises(UnprocessedObjectsError) as caught:
        index.handler(cloud.stamp(event), lambda_context)

    assert [(o.key, o.status) for o in caught.value.outcomes] == [("photos/loop.jpg", "refused")]
    assert cloud.keys(DESTINATION) == ["photos/cat.jpg"]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_missing_setting_fails_loudly_before_touching_anything(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEST_BUCKET")
    cloud.put_source("photos/cat.jpg", photo_jpeg(160, 120))

    with pytest.raises(SettingsError, match="DEST_BUCKET"):
        index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert cloud.keys(FAILED) == []
    errors = [r for r in log_records(capsys.readouterr().out) if r.get("level") == "ERROR"]
    assert len(errors) == 1 and "DEST_BUCKET" in errors[0]["message"]


def test_source_deleted_before_processing_is_not_an_error(
    cloud: Cloud, lambda_context: LambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    response = index.handler(cloud.stamp(load_event("put_simple.json")), lambda_context)

    assert response["results"][0]["status"] == "missing"
    assert cloud.keys(DESTINATION) == cloud.keys(FAILED) == []
    [summary] = summaries(capsys.readouterr().out)
    assert summary["status"] == "missing"


# --- contracts used by other parts -------------------------------------------------------------------------------


def test_parse_message_refuses_foreign_messages() -> None:
    with pytest.raises(ValueError, match="not an image-compressor notification"):
        parse_message("Hello from another publisher")
    with pytest.raises(ValueError, match="not an image-compressor notification"):
        parse_message(json.dumps({"Type": "Notification", "Message": "plain text"}))


def test_metadata_is_ascii_and_fits_the_s3_limit() -> None:
    fitted = aws.fit_metadata({"status": "failed", "source-etag": "abc", "reason": "naïve ☕ line\nbreak " * 400})
    assert all(value.isascii() and "\n" not in value for value in fitted.values())
    assert sum(len(k) + len(v) for k, v in fitted.items()) <= aws.MAX_METADATA_BYTES
    assert fitted["reason"].startswith("naive \\u2615 line break") and fitted["reason"].endswith("...")
    assert fitted["status"] == "failed"
