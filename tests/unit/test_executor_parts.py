"""The pure parts of the local Lambda executor: the pipe protocol, Lambda's log lines and error document.

The executor's behaviour with real workers is in ``tests/integration/test_executor.py``.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from localcloud import bootstrap, lambdaenv, lambdalogs, protocol, runtime
from localcloud.invocation import FunctionSpec, error_document, spec_environment


def make_spec(**changes) -> FunctionSpec:
    values = {
        "name": "fn",
        "arn": "arn:aws:lambda:eu-west-1:123456789012:function:fn",
        "version": "$LATEST",
        "handler": "index.handler",
        "runtime": "python3.13",
        "timeout": 3.0,
        "memory_size": 256,
        "environment": spec_environment({"B": "2", "A": "1"}),
        "region": "eu-west-1",
        "account_id": "123456789012",
        "code_dir": Path("/code"),
    }
    values.update(changes)
    return FunctionSpec(**values)


def feed_all(lines: list[bytes]) -> list[tuple[str, str]]:
    channel = protocol.LogChannel()
    items = [item for raw in lines for item in channel.feed(raw)]
    return items + channel.close()


def test_the_log_channel_splits_lines_and_marks_and_drops_the_blank_line_before_a_mark():
    mark = bootstrap.MARK.encode()
    items = feed_all([b"hello\n", b"\n", mark + b" init\n", b"a\n", b"\n", b"\n", b"b\r\n", b"\n", mark + b" req-1\n"])

    assert items == [
        ("line", "hello"),
        ("mark", "init"),
        ("line", "a"),
        ("line", ""),
        ("line", ""),
        ("line", "b"),
        ("mark", "req-1"),
    ]


def test_the_log_channel_keeps_output_written_without_a_newline_before_the_mark_and_a_trailing_blank_line():
    mark = bootstrap.MARK.encode()

    assert feed_all([b"partial" + mark + b" req-2\n", b"\n"]) == [("line", "partial"), ("mark", "req-2"), ("line", "")]
    assert feed_all([b"caf\xc3\xa9 \xff\n"]) == [("line", "café \ufffd")]


def test_a_request_line_carries_the_event_the_deadline_and_lambdas_context():
    line = protocol.request_line(make_spec(), "req-1", {"k": "v"}, "2026/11/28/[$LATEST]abc")

    assert line.endswith(b"\n") and line.count(b"\n") == 1
    request = json.loads(line)
    assert request["id"] == "req-1"
    assert request["event"] == {"k": "v"}
    assert request["deadline_ms"] > 0
    assert request["context"] == {
        "function_name": "fn",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:fn",
        "memory_limit_in_mb": 256,
        "log_group_name": "/aws/lambda/fn",
        "log_stream_name": "2026/11/28/[$LATEST]abc",
    }


def test_replies_are_read_as_lambda_reports_them():
    ok = protocol.parse_message(b'{"type": "result", "ok": true, "payload": "[1]", "duration_ms": 2.5}\n')
    failed = {"type": "result", "ok": False, "error": {"errorType": "ValueError", "errorMessage": "no"}}

    assert protocol.result_error(ok) is None
    assert protocol.result_payload(ok) == b"[1]"
    assert protocol.result_duration_ms(ok, 99.0) == 2.5
    assert protocol.result_duration_ms(None, 99.0) == 99.0
    assert protocol.result_max_memory_mb({"max_memory_mb": 41}) == 41
    assert protocol.result_error(failed) == {"errorType": "ValueError", "errorMessage": "no"}
    assert protocol.result_error({"ok": False}) == {"errorType": "Unknown", "errorMessage": "no error details"}


def test_exit_reasons_use_lambdas_words():
    assert protocol.exit_reason(3) == "Runtime exited with error: exit status 3"
    assert protocol.exit_reason(-signal.SIGKILL) == "Runtime exited with error: signal: killed"
    assert protocol.exit_reason(-signal.SIGSEGV) == "Runtime exited with error: signal: segmentation fault"
    assert protocol.exit_reason(None) == "Runtime exited without providing a reason"


def test_report_lines_and_error_documents_follow_lambda():
    warm = lambdalogs.report_line("r", 0.4, 256, 40)
    cold = lambdalogs.report_line("r", 12.345, 256, 40, init_ms=300.0, status=lambdalogs.TIMEOUT_STATUS)

    assert warm.split("\t") == [
        "REPORT RequestId: r",
        "Duration: 0.40 ms",
        "Billed Duration: 1 ms",
        "Memory Size: 256 MB",
        "Max Memory Used: 40 MB",
    ]
    assert cold.split("\t")[2:] == [
        "Billed Duration: 13 ms",
        "Memory Size: 256 MB",
        "Max Memory Used: 40 MB",
        "Init Duration: 300.00 ms",
        "Status: timeout",
    ]
    assert error_document({"errorType": "Sandbox.Timedout", "errorMessage": "late"}, "r") == {
        "errorMessage": "late",
        "errorType": "Sandbox.Timedout",
    }
    assert error_document({"errorType": "ValueError", "errorMessage": "x", "stackTrace": ["f"]}, "r") == {
        "errorMessage": "x",
        "errorType": "ValueError",
        "requestId": "r",
        "stackTrace": ["f"],
    }
    assert lambdalogs.log_tail(["a" * 5000, "end"]).endswith("a\nend\n")
    assert len(lambdalogs.log_tail(["a" * 5000]).encode()) == lambdalogs.LOG_RESULT_BYTES


def test_the_environment_keeps_reserved_names_for_the_executor(tmp_path):
    spec = make_spec(environment=spec_environment({"GREETING": "hi", "AWS_REGION": "us-east-1", "_HANDLER": "x.y"}))
    choice = runtime.RuntimeChoice(python="/usr/bin/python3", use_layers=False)
    sys_path = lambdaenv.worker_sys_path(spec, choice, [], tmp_path / "runtime-packages")

    env = lambdaenv.worker_environment(spec, "s", sys_path, ["note"], "http://127.0.0.1:1", tmp_path, tmp_path)

    assert sys_path == ["/code"]
    assert env["GREETING"] == "hi"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["_HANDLER"] == "index.handler"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert json.loads(env["LOCALCLOUD_SYS_PATH"]) == ["/code"]
    assert json.loads(env["LOCALCLOUD_INIT_NOTES"]) == ["note"]


def test_the_pool_key_changes_with_code_and_configuration():
    spec = make_spec()

    assert spec.pool_key() == make_spec().pool_key()
    assert spec.pool_key() != make_spec(code_dir=Path("/other")).pool_key()
    assert spec.pool_key() != make_spec(timeout=4.0).pool_key()
