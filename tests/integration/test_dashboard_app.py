"""The dashboard's pages, driven by Streamlit's AppTest against the embedded local cloud (uploads really processed)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import streamlit as st
from botocore.exceptions import ClientError
from image_compressor.settings import Settings
from streamlit.testing.v1 import AppTest

from dashboard import ui
from dashboard.text import md
from tests.jpegs import photo_jpeg
from tests.stacks import write_stack_file

pytestmark = pytest.mark.integration

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
RUN_TIMEOUT = 180  # seconds one script run may take (an upload waits for the function)
CORRUPT = b"this is not a JPEG, only its name says so\n" * 4


# -- fixtures and helpers ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Streamlit's caches outlive an AppTest: every test starts and ends with empty ones."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def stack(embedded_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the dashboard at the session's embedded stack through a stack file; state in a fresh directory."""
    stack_file = write_stack_file(tmp_path, "embedded", embedded_stack.endpoint, embedded_stack.outputs)
    monkeypatch.setenv("DASHBOARD_STACK_FILE", str(stack_file))
    monkeypatch.setenv("DASHBOARD_STATE_DIR", str(tmp_path / "state"))
    return embedded_stack


def new_key(suffix: str = ".jpg") -> str:
    return f"dash-{uuid.uuid4().hex[:10]}{suffix}"


def app(page: str | None = None, **query: str | list[str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    if page:
        at.switch_page(page)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def assert_clean(at: AppTest) -> None:
    """No uncaught exception (a traceback on the page) and no error message."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.main.metric}


def put_and_wait(stack: Any, key: str, data: bytes, timeout: float = 90) -> dict[str, Any]:
    """Upload to the source bucket and wait until the function wrote the destination or failed object."""
    stack.client("s3").put_object(Bucket=stack.outputs["source_bucket"], Key=key, Body=data)
    return put_and_wait_for_existing(stack, key, timeout)


def rerun_until(at: AppTest, condition: Any, timeout: float = 30) -> AppTest:
    """Rerun the page until ``condition(at)`` holds (the pipeline is asynchronous: SNS, logs)."""
    deadline = time.monotonic() + timeout
    while not condition(at):
        assert time.monotonic() < deadline, "the page never showed what the test waited for"
        time.sleep(0.5)
        st.cache_data.clear()
        at.run()
    return at


# -- sidebar and errors -----------------------------------------------------------------------------------------------


def test_sidebar_shows_target_endpoint_buckets_and_a_green_light_per_service(stack: Any) -> None:
    at = app()
    assert_clean(at)
    sidebar = "\n".join([m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption])
    assert "Embedded local cloud" in sidebar
    assert stack.endpoint in sidebar
    for name in ("source_bucket", "destination_bucket", "failed_bucket", "function_name", "log_group_name"):
        assert stack.outputs[name] in sidebar
    for service in ("S3 source", "S3 destination", "S3 failed", "SNS", "SQS", "Lambda", "Logs"):
        assert f":green[●] {service}" in sidebar
    assert ":red[●]" not in sidebar
    assert "Hot reload" not in sidebar  # the session's stack runs the built zip


def test_sidebar_says_hot_reload_is_on_with_the_directory(
    embedded_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_dir = str(Path(APP).parents[1] / "lambda")
    stack_file = write_stack_file(
        tmp_path, "embedded", embedded_stack.endpoint, embedded_stack.outputs, hot_reload_dir=lambda_dir
    )
    monkeypatch.setenv("DASHBOARD_STACK_FILE", str(stack_file))
    monkeypatch.setenv("DASHBOARD_STATE_DIR", str(tmp_path / "state"))

    at = app()

    assert_clean(at)
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert f"Hot reload: on** (`{lambda_dir}`)" in sidebar


FAKE_OUTPUTS = {name: f"x-{name}" for name in ("source_bucket", "destination_bucket", "failed_bucket")} | {
    "function_name": "f",
    "log_group_name": "/aws/lambda/f",
    "dlq_url": "u",
    "sns_topic_arn": "a",
}


def _free_port() -> int:
    """Return a port nobody listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_stopped_local_cloud_gives_a_message_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack_file = write_stack_file(tmp_path, "embedded", f"http://127.0.0.1:{_free_port()}", FAKE_OUTPUTS)
    monkeypatch.setenv("DASHBOARD_STACK_FILE", str(stack_file))
    for page in (None, "views/history.py", "views/failed.py"):
        at = app(page)
        assert not at.exception
        message = " ".join(e.value for e in at.error)
        assert "is not answering" in message and "make local-up" in message


def test_a_missing_stack_file_says_how_to_make_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_STACK_FILE", str(tmp_path / "nope.json"))
    at = app()
    assert not at.exception
    assert "does not exist" in at.error[0].value
    assert "No stack" in "\n".join(m.value for m in at.sidebar.markdown)


def test_missing_aws_credentials_give_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    outputs = {name: f"x-{name}" for name in ("source_bucket", "destination_bucket", "failed_bucket")}
    outputs |= {"function_name": "f", "log_group_name": "/aws/lambda/f", "dlq_url": "u", "sns_topic_arn": "a"}
    stack_file = write_stack_file(tmp_path, "aws", None, outputs)
    monkeypatch.setenv("DASHBOARD_STACK_FILE", str(stack_file))
    at = app()
    assert not at.exception
    assert "No AWS credentials found" in at.error[0].value
    assert "AWS_PROFILE" in at.error[0].value


# -- upload & compare -------------------------------------------------------------------------------------------------


def test_upload_shows_both_sizes_the_saving_and_the_previews(stack: Any) -> None:
    key = new_key()
    data = photo_jpeg(800, 600, quality=95)
    at = app()
    at.file_uploader(key="upload_files").set_value((key, data, "image/jpeg"))
    at.run()
    assert_clean(at)

    head = stack.client("s3").head_object(Bucket=stack.outputs["destination_bucket"], Key=key)
    output_bytes = head["ContentLength"]
    figures = metrics(at)
    assert figures["Original"] == ui.human_bytes(len(data))
    assert figures["Compressed"] == ui.human_bytes(output_bytes)
    assert figures["Saved"] == f"{(1 - output_bytes / len(data)) * 100:.1f} %"
    assert figures["Dimensions"] == "800 × 600"
    assert figures["Quality"] == head["Metadata"]["quality"]
    assert figures["Processing"].endswith(" ms")
    assert any(f"{len(data):,} bytes → {output_bytes:,} bytes" in c.value for c in at.caption)
    assert ":green-badge[" in " ".join(m.value for m in at.main.markdown)
    assert at.query_params["key"] == key  # a reload shows this result again
    captions = [c for image in at.image for c in image.captions]
    assert any(c.startswith("Original · 800 × 600") for c in captions)
    assert any(c.startswith("Compressed · 800 × 600") for c in captions)


def test_upload_of_several_files_waits_for_each_result(stack: Any) -> None:
    good, bad = new_key(), new_key()
    at = app()
    at.file_uploader(key="upload_files").set_value(
        [(good, photo_jpeg(320, 240), "image/jpeg"), (bad, CORRUPT, "image/jpeg")]
    )
    at.run()
    assert not at.exception
    status = [s for s in at.status if "result(s) arrived" in s.label]
    assert status, "the upload status block reports that every result arrived"
    titles = [m.value for m in at.main.markdown if m.value.startswith("#### ")]
    assert titles == [f"#### {md(good)}", f"#### {md(bad)}"]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Failed: ") and "JPEG" in errors[0]


def test_a_corrupt_jpg_is_shown_as_failed_with_its_reason(stack: Any) -> None:
    key = new_key()
    at = app()
    at.file_uploader(key="upload_files").set_value((key, CORRUPT, "image/jpeg"))
    at.run()
    assert not at.exception
    reason = stack.client("s3").head_object(Bucket=stack.outputs["failed_bucket"], Key=key)["Metadata"]["reason"]
    assert [e.value for e in at.error] == [f"Failed: {md(reason)}"]
    assert ":red-badge[" in " ".join(m.value for m in at.main.markdown)
    assert metrics(at)["Original"] == ui.human_bytes(len(CORRUPT))
    assert any(c.value.startswith("No preview: the original is not a JPEG") for c in at.caption)


def test_reload_with_the_key_in_the_url_shows_the_result_again(stack: Any) -> None:
    key = new_key()
    data = photo_jpeg(400, 300)
    put_and_wait(stack, key, data)
    at = app(key=key)
    assert_clean(at)
    assert metrics(at)["Original"] == ui.human_bytes(len(data))
    assert f"#### {md(key)}" in [m.value for m in at.main.markdown]


def test_flip_and_detail_views_show_the_same_part_at_the_same_zoom(stack: Any) -> None:
    key = new_key()
    put_and_wait(stack, key, photo_jpeg(900, 700))
    at = app(key=key, view="Flip")
    assert_clean(at)
    toggle = at.toggle(key=f"flip-0-{key}")
    assert [c for image in at.image for c in image.captions][0].startswith("Original")
    toggle.set_value(True).run()
    assert [c for image in at.image for c in image.captions][0].startswith("Compressed")

    at = app(key=key, view="Detail 1:1")
    assert_clean(at)
    captions = [c for image in at.image for c in image.captions]
    assert captions == ["Original · centre at 100 %", "Compressed · same region at 100 %"]


def test_a_kept_original_result_shows_its_reason_and_no_saving(stack: Any) -> None:
    """A result as the function writes it when re-encoding would not be smaller (the original is the output)."""
    key = new_key()
    data = photo_jpeg(200, 150, quality=30)
    stack.client("s3").put_object(
        Bucket=stack.outputs["destination_bucket"],
        Key=key,
        Body=data,
        Metadata={
            "status": "kept-original",
            "original-bytes": str(len(data)),
            "output-bytes": str(len(data)),
            "quality": "0",
            "processing-ms": "4.2",
            "source-etag": hashlib.md5(data).hexdigest(),  # noqa: S324 - S3's ETag of a single-part upload
            "settings": "test",
            "width": "200",
            "height": "150",
            "reason": "re-encoding would not make it smaller; the original was kept",
        },
    )
    at = app(key=key)
    assert not at.exception
    figures = metrics(at)
    assert figures["Original"] == figures["Compressed"] == ui.human_bytes(len(data))
    assert figures["Saved"] == "0.0 %" and figures["Quality"] == "–"
    assert [i.value for i in at.info] == [md("re-encoding would not make it smaller; the original was kept")]
    assert ":blue-badge[" in " ".join(m.value for m in at.main.markdown)
    # the source object is not there (the result was written directly), so the page says why there is no preview
    assert any(w.value.startswith("No preview: The object no longer exists") for w in at.warning)


# -- history ----------------------------------------------------------------------------------------------------------


def test_history_lists_every_result_with_totals_and_filters_by_status(stack: Any) -> None:
    good, bad = new_key(), new_key()
    data = photo_jpeg(500, 400)
    put_and_wait(stack, good, data)
    put_and_wait(stack, bad, CORRUPT)

    at = app("views/history.py")
    assert_clean(at)
    table = at.dataframe[0].value
    rows = {row["key"]: row for row in table.to_dict("records")}
    assert rows[good]["status"] == "compressed" and rows[good]["input_bytes"] == len(data)
    assert rows[good]["output_bytes"] < len(data) and rows[good]["saved_pct"] > 0
    assert rows[bad]["status"] == "failed" and "JPEG" in rows[bad]["reason"]
    assert rows[bad]["ms"] > 0  # the function's handling time, as in the message, not the core's 0.0
    figures = metrics(at)
    assert int(figures["Images"]) == len(table) and int(figures["Failed"]) >= 1
    assert figures["Bytes saved"].endswith(("B", "KiB", "MiB"))
    assert len(at.get("vega_lite_chart")) == 2  # before/after per image, distribution of savings

    at.pills(key="status").set_value(["failed"]).run()
    assert set(at.dataframe[0].value["status"]) == {"failed"}
    assert int(metrics(at)["Compressed"]) == 0

    reloaded = app("views/history.py", status="failed")  # the filter lives in the URL: a reload keeps it
    assert reloaded.pills(key="status").value == ["failed"]
    assert set(reloaded.dataframe[0].value["status"]) == {"failed"}


def test_run_again_on_a_history_row_invokes_the_function_and_shows_its_result_and_log_lines(stack: Any) -> None:
    key = new_key()
    put_and_wait(stack, key, photo_jpeg(400, 300, quality=95))
    before = stack.client("s3").head_object(Bucket=stack.outputs["destination_bucket"], Key=key)["Metadata"]

    at = app("views/history.py")
    at.selectbox(key="history_run_key").set_value(key)
    at.radio(key="history_run_event").set_value("batch")
    at.button(key="history_run_again").click().run()

    assert_clean(at)
    [done] = [s.value for s in at.success if s.value.startswith(f"Ran {md(key)} again (batch event")]
    assert "**compressed" in done and md("output re-used (same bytes and settings, not re-encoded)") in done
    report, log = (c.value for c in at.code)
    assert report.startswith("REPORT RequestId: ")
    rid = report.split()[2]
    summaries = [json.loads(line) for line in log.splitlines() if '"image processed"' in line]
    assert [(s["key"], s["status"], s["function_request_id"]) for s in summaries] == [(key, "compressed", rid)]
    after = stack.client("s3").head_object(Bucket=stack.outputs["destination_bucket"], Key=key)["Metadata"]
    assert after["source-event"] != before["source-event"]  # the run's own record: the function really ran

    stack.client("s3").delete_object(Bucket=stack.outputs["source_bucket"], Key=key)
    at.button(key="history_run_again").click().run()  # the row is still listed; its original is gone
    assert not at.exception
    assert f"Run again of {md(key)}: " in at.error[0].value and "nothing was invoked" in at.error[0].value


# -- notifications ----------------------------------------------------------------------------------------------------


def test_notifications_are_moved_from_the_queue_to_a_file_and_survive_a_restart(stack: Any, tmp_path: Path) -> None:
    key = new_key()
    put_and_wait(stack, key, photo_jpeg(300, 200))

    def shows_key(at: AppTest) -> bool:
        return any(md(key) in e.label for e in at.expander)  # labels are Markdown: the key shows as text

    at = rerun_until(app("views/notifications.py"), shows_key)
    assert_clean(at)
    label = next(e.label for e in at.expander if md(key) in e.label)
    assert md(f"Image compressed: {key}") in label
    table = at.dataframe[0].value
    row = table[table["key"] == key].iloc[0]
    assert row["status"] == "compressed" and row["subject"] == f"Image compressed: {key}"
    assert list(table["time"]) == sorted(table["time"], reverse=True)  # newest first

    stored = [json.loads(line) for line in (tmp_path / "state" / "notifications.jsonl").read_text().splitlines()]
    mine = [n for n in stored if n["key"] == key]
    assert len(mine) == 1 and mine[0]["payload"]["status"] == "compressed"
    assert "Saved" in mine[0]["body"] or "saved" in mine[0]["body"]

    st.cache_data.clear()
    st.cache_resource.clear()
    restarted = app("views/notifications.py")  # a new session: the message is no longer in SQS, only in the file
    assert any(md(key) in e.label for e in restarted.expander)


def test_a_message_leaves_the_queue_only_after_it_was_written(stack: Any, tmp_path: Path) -> None:
    from dashboard import notifications as nt

    sqs = stack.client("sqs")
    queue = sqs.create_queue(QueueName=f"dash-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "0"})
    url = queue["QueueUrl"]
    try:
        envelope = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "Subject": "Image compressed: a.jpg",
            "Message": 'Image compressed: a.jpg\n\n---\n{"status":"compressed","key":"a.jpg","bucket":"b"}',
            "Timestamp": "2026-01-02T03:04:05.678Z",
            "MessageAttributes": {"status": {"Type": "String", "Value": "compressed"}},
        }
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(envelope))
        blocked = tmp_path / "a-file"
        blocked.write_text("not a directory")
        with pytest.raises(OSError):
            nt.drain_queue(sqs, url, nt.NotificationStore(blocked / "notifications.jsonl"))
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages"), "message lost"

        store = nt.NotificationStore(tmp_path / "ok" / "notifications.jsonl")
        assert nt.drain_queue(sqs, url, store) == 1
        assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages")
        [saved] = store.read()
        assert (saved.subject, saved.status, saved.key) == ("Image compressed: a.jpg", "compressed", "a.jpg")
        assert saved.body == "Image compressed: a.jpg" and saved.time == "2026-01-02T03:04:05.678Z"

        alarm = {"AlarmName": "image-compressor-errors", "NewStateValue": "ALARM", "NewStateReason": "1 error"}
        later = envelope | {"MessageId": str(uuid.uuid4()), "Subject": "ALARM", "Message": json.dumps(alarm)}
        later |= {"Timestamp": "2026-01-02T04:00:00.000Z", "MessageAttributes": {}}
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(later))
        sqs.send_message(QueueUrl=url, MessageBody="something else entirely")
        assert nt.drain_queue(sqs, url, store) == 2
        items = store.read()
        assert sorted(n.status for n in items) == ["alarm", "compressed", "unknown"]
        [alarm_item] = [n for n in items if n.status == "alarm"]
        assert alarm_item.body == "image-compressor-errors: ALARM\n1 error" and alarm_item.subject == "ALARM"
        assert any(n.body == "something else entirely" for n in items)
    finally:
        sqs.delete_queue(QueueUrl=url)


# -- logs -------------------------------------------------------------------------------------------------------------


def test_logs_show_the_functions_lines_newest_first_with_report_figures_and_cost(stack: Any) -> None:
    key = new_key()
    put_and_wait(stack, key, photo_jpeg(640, 480))

    at = rerun_until(app("views/logs.py"), lambda at: bool(at.html) and key in at.html[0].value)
    assert_clean(at)
    figures = metrics(at)
    assert int(figures["Invocations"]) >= 1
    assert figures["Duration p50"].endswith(" ms") and figures["Duration p95"].endswith(" ms")
    assert figures["Max memory used"].endswith(" MB")
    assert figures["AWS cost / 1,000 images"].startswith("$")
    memory = stack.client("lambda").get_function_configuration(FunctionName=stack.outputs["function_name"])
    assert any(f"{memory['MemorySize']} MB configured" in c.value for c in at.caption)
    assert "REPORT RequestId" in at.html[0].value
    assert ">INFO</span>" in at.html[0].value  # level highlighting

    at.text_input(key="q").input(key).run()
    lines = at.html[0].value.split('<div class="log-line"')[1:]
    assert lines and all(key in line for line in lines)

    reloaded = app("views/logs.py", q=key)  # the filter lives in the URL: a reload keeps it
    assert reloaded.text_input(key="q").value == key
    assert reloaded.html[0].value.count('<div class="log-line"') == len(lines)


# -- failed -----------------------------------------------------------------------------------------------------------


def test_failed_lists_the_reason_and_reprocess_replays_the_upload(stack: Any) -> None:
    key = new_key()
    head = put_and_wait(stack, key, CORRUPT)
    assert head["Bucket"] == stack.outputs["failed_bucket"]
    first_reason = head["Metadata"]["reason"]

    at = app("views/failed.py")
    assert_clean(at)
    texts = [m.value for m in at.main.markdown]
    assert f"#### {md(key)}" in texts and f"**Reason:** {md(first_reason)}" in texts

    at.button(key=f"reprocess-{key}").click().run()
    assert not at.exception
    assert f"Reprocessed {md(key)}: failed again — {md(first_reason)}" in [e.value for e in at.error]
    again = stack.client("s3").head_object(Bucket=stack.outputs["failed_bucket"], Key=key)
    # A new failed copy from the replay: the retired copy the reprocess wrote carried retry-requested and no
    # source-etag; the function's fresh copy has its source-etag again and no retry-requested. (The replay of the
    # same source version has the same event id, and both copies may be written within one second of S3's
    # LastModified resolution, so neither tells the copies apart.)
    assert again["Metadata"]["source-etag"] == head["ETag"].strip('"')
    assert "retry-requested" not in again["Metadata"] and "retried-source-etag" not in again["Metadata"]
    source = stack.client("s3").head_object(Bucket=stack.outputs["source_bucket"], Key=key)
    assert source["ETag"] == head["ETag"] and "retry-requested" not in source["Metadata"]


def test_reprocess_of_a_failed_copy_whose_original_is_gone_copies_it_back(stack: Any) -> None:
    """No source object to replay: the failed copy goes back to the source key, and that upload is the event."""
    key = new_key()
    data = photo_jpeg(320, 240)
    conf = stack.client("lambda").get_function_configuration(FunctionName=stack.outputs["function_name"])
    env = conf.get("Environment", {}).get("Variables", {})
    fingerprint = Settings.from_env({"DEST_BUCKET": "d", "FAILED_BUCKET": "f", **env}).fingerprint()
    stack.client("s3").put_object(
        Bucket=stack.outputs["failed_bucket"],
        Key=key,
        Body=data,
        ContentType="image/jpeg",
        Metadata={
            "status": "failed",
            "reason": "simulated: the destination bucket was unreachable",
            "source-etag": hashlib.md5(data).hexdigest(),  # noqa: S324 - S3's ETag of a single-part upload
            "settings": fingerprint,
            "original-bytes": str(len(data)),
        },
    )
    at = app("views/failed.py")
    reason = md("simulated: the destination bucket was unreachable")
    assert f"**Reason:** {reason}" in [m.value for m in at.main.markdown]
    at.button(key=f"reprocess-{key}").click().run()
    assert_clean(at)
    assert any(s.value.startswith(f"Reprocessed {md(key)}: **compressed**") for s in at.success)
    s3 = stack.client("s3")
    made = s3.head_object(Bucket=stack.outputs["destination_bucket"], Key=key)
    assert made["Metadata"]["source-etag"] == hashlib.md5(data).hexdigest()  # noqa: S324
    with pytest.raises(ClientError):
        s3.head_object(Bucket=stack.outputs["failed_bucket"], Key=key)
    assert f"#### {md(key)}" not in [m.value for m in at.main.markdown]


# -- dead letters -----------------------------------------------------------------------------------------------------


def dead_letter_record(bucket: str, key: str, etag: str) -> dict[str, Any]:
    """An on-failure destination record for an upload of ``key``, as Lambda writes it to the dead-letter queue."""
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "eTag": etag}},
            }
        ]
    }
    return {
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "UnprocessedObjectsError", "errorMessage": f"{key} :red[not] *placed*"},
    }


def test_dead_letters_show_keys_and_errors_as_text_and_replay_all_processes_them(stack: Any) -> None:
    out = stack.outputs
    s3, sqs = stack.client("s3"), stack.client("sqs")
    # Objects whose names trigger nothing (not .jpg at the end): only the replay can give them an outcome.
    keys = [f"{new_key('')} *stars* [x](y).jpg.in", f"{new_key('')} plain.jpg.in"]
    for key in keys:
        etag = s3.put_object(Bucket=out["source_bucket"], Key=key, Body=photo_jpeg(320, 240))["ETag"].strip('"')
        sqs.send_message(
            QueueUrl=out["dlq_url"], MessageBody=json.dumps(dead_letter_record(out["source_bucket"], key, etag))
        )
    garbage = f"not an event {uuid.uuid4().hex}"
    sqs.send_message(QueueUrl=out["dlq_url"], MessageBody=garbage)
    try:
        at = app("views/deadletters.py")
        assert_clean(at)
        texts = [m.value for m in at.main.markdown]
        for key in keys:
            where = f"s3://{out['source_bucket']}/{key}"
            error = f"UnprocessedObjectsError: {key} :red[not] *placed* · RetriesExhausted after 3 attempt(s)"
            assert f"**{md(where)}**" in texts
            assert f"**Error:** {md(error)}" in texts
        assert any(w.value.startswith("Not replayable: ") and "the body is not JSON" in w.value for w in at.warning)
        count = int(metrics(at)["Messages in the dead-letter queue"])
        assert count >= 3

        at.button(key="dlq_replay_all").click().run()
        assert not at.exception

        assert any("could not be replayed and stay in the queue" in w.value for w in at.warning)
        for key in keys:
            result = put_and_wait_for_existing(stack, key)
            assert result["Bucket"] == out["destination_bucket"] and result["Metadata"]["status"] == "compressed"
        assert int(metrics(at)["Messages in the dead-letter queue"]) == count - 2
        tags = [key.split()[0] for key in keys]  # dash-<hex>: unique to this test
        assert not [t for t in (m.value for m in at.main.markdown) if any(tag in t for tag in tags)]
    finally:
        for message in sqs.receive_message(QueueUrl=out["dlq_url"], MaxNumberOfMessages=10).get("Messages", []):
            if message["Body"] == garbage:
                sqs.delete_message(QueueUrl=out["dlq_url"], ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=out["dlq_url"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )


def put_and_wait_for_existing(stack: Any, key: str, timeout: float = 90) -> dict[str, Any]:
    """Wait until the function wrote the destination or failed object of ``key`` (already in the source bucket)."""
    s3 = stack.client("s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for bucket in (stack.outputs["destination_bucket"], stack.outputs["failed_bucket"]):
            try:
                return s3.head_object(Bucket=bucket, Key=key) | {"Bucket": bucket}
            except ClientError:
                pass
        time.sleep(0.3)
    raise AssertionError(f"the function wrote no result for {key} within {timeout} s")


# -- the plain helpers behind the pages -------------------------------------------------------------------------------


def test_previews_are_downscaled_to_the_same_size_while_the_figures_keep_the_full_size() -> None:
    from dashboard import images

    before = photo_jpeg(3000, 2000, quality=90)
    after = photo_jpeg(1500, 1000, quality=70)  # as if the pipeline had downscaled it
    left, right = images.preview_pair(before, after)
    assert (left.width, left.height) == (images.PREVIEW_SIDE, 683)
    assert (right.width, right.height) == (left.width, left.height)  # same zoom
    assert (left.full_width, left.full_height) == (3000, 2000)
    assert (right.full_width, right.full_height) == (1500, 1000)
    with pytest.raises(ValueError, match="not a JPEG"):
        images.preview_pair(CORRUPT, None)


def test_report_lines_give_percentiles_max_memory_and_the_cost_of_1000_images() -> None:
    from dashboard import logs

    text = (
        "REPORT RequestId: r1\tDuration: 99.20 ms\tBilled Duration: 100 ms\tMemory Size: 512 MB\tMax Memory Used: 80 MB"
    )
    platform = json.dumps(
        {
            "type": "platform.report",
            "record": {"metrics": {"durationMs": 300.5, "billedDurationMs": 301, "maxMemoryUsedMB": 120}},
        }
    )
    reports = [logs.parse_report(text), logs.parse_report(platform)]
    assert reports[0] == logs.Report(99.2, 100.0, 512, 80, None)
    assert logs.parse_report("START RequestId: r1 Version: $LATEST") is None
    summary = logs.summarise_reports(reports, configured_memory_mb=1024)
    assert (summary.count, summary.p50_ms, summary.p95_ms, summary.max_memory_mb) == (2, 99.2, 300.5, 120)
    # mean billed 200.5 ms at 1 GB: 0.2005 GB-s per image
    assert summary.cost_per_1000_usd == pytest.approx(1000 * (0.2005 * 0.0000166667 + 0.0000002))
    line = json.dumps({"level": "INFO", "message": "image processed", "key": "a.jpg", "duplicate": False, "ms": 0})
    assert logs.summary_of(line) == "image processed · key=a.jpg · ms=0"
    assert logs.summary_of(text) is None
    assert [logs.level_of(m) for m in (text, '{"level":"WARNING","message":"x"}', "[ERROR] boom", "hello")] == [
        "REPORT",
        "WARNING",
        "ERROR",
        "OTHER",
    ]
