"""``make local-up DEBUG=1``: a debugger (a Debug Adapter Protocol client over the socket, no editor) in the function.

On the session's embedded stack: debugging is switched on for the stack's function the way ``ops up --debug`` does
(:func:`ops.debugging.enable`), a client attaches with the path mapping of ``.vscode/launch.json`` and a breakpoint
in ``lambda/index.py``, a real upload stops there, the object key is read from the frame's variables, and after
``continue`` the outcome and its one notification arrive. A second upload sent while the first is stopped waits its
turn (one worker) and is neither lost nor retried. On the session's local cloud: a function whose timeout is shorter
than the time it spends stopped still returns its result, and the remaining time it sees leaves the stop out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from image_compressor.notification import parse_message
from streamlit.testing.v1 import AppTest

from bench.dap import DapClient
from dashboard.text import md
from ops import debugging, procs
from ops.defaults import FUNCTION_SOURCE_DIR
from ops.launch import run_ops
from ops.statedir import StateFiles
from tests import stacks
from tests.integration.test_executor import role_arn, zip_bytes  # noqa: F401 (role_arn is a fixture)
from tests.jpegs import photo_jpeg
from tests.stacks import write_stack_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT_S = 120.0
HOST = "127.0.0.1"
INDEX = FUNCTION_SOURCE_DIR / "index.py"
#: The handler's line the breakpoint goes on: the event is parsed (``refs`` holds the objects), nothing is done yet.
BREAK_AT = 'logger.info("processing event"'


def source_line(path: Path, text: str) -> int:
    """Return the 1-based number of the first line of ``path`` that contains ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} is not in {path}")


def debug_code_dir(state_dir: Path, function: str) -> Path:
    """Where the debug worker runs the function's code: the path ``.vscode/launch.json`` maps ``lambda/`` to."""
    return StateFiles(state_dir).lambda_cache / "debug" / function


def attached_client(port: int, debug_port: int, local_root: Path, remote_root: Path, line: int = 0) -> DapClient:
    """Attach a DAP client to the debug worker (a breakpoint on ``line`` of ``index.py`` unless 0); wait for it."""
    client = DapClient(HOST, debug_port)
    answered = client.attach(
        [{"localRoot": str(local_root), "remoteRoot": str(remote_root)}],
        {str(local_root / "index.py"): [line] if line else []},
    )
    assert [b["verified"] for b in answered[str(local_root / "index.py")]] == ([True] if line else [])
    stacks.poll(lambda: debugging.state(port)["state"] == "attached", timeout=30, what="the debugger attached")
    return client


def variable(client: DapClient, frame_id: int, *path: str) -> str:
    """Return the value (repr) of a frame's local ``path[0]``, then of each child named by the rest of ``path``."""
    items = client.locals(frame_id)
    for name in path[:-1]:
        items = client.variables(items[name]["variablesReference"])
    return items[path[-1]]["value"]


def take_notifications(sqs: Any, queue_url: str, keys: set[str]) -> list[dict[str, Any]]:
    """Receive the pipeline notifications about ``keys`` until each has one; delete those, release the others.

    The session's stack is shared: messages about other tests' uploads go back to the queue at once.
    """
    mine: list[dict[str, Any]] = []

    def receive() -> bool:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in batch:
            try:
                payload = parse_message(message["Body"])
            except ValueError:
                payload = {}
            if payload.get("key") in keys:
                mine.append(payload)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return keys <= {p["key"] for p in mine}

    stacks.poll(receive, timeout=WAIT_S, interval=0.2, what=f"a notification for each of {sorted(keys)}")
    receive()  # one more look: a duplicate would be here by now
    return mine


@pytest.fixture
def debugged_stack(embedded_stack) -> Iterator[tuple[Any, str, int, dict[str, Any]]]:
    """Debug the stack's function on a free port (as ``ops up --debug`` does); switch it off after the test."""
    function = embedded_stack.outputs["function_name"]
    debug_port = procs.free_port()
    found = debugging.enable(embedded_stack.port, function, embedded_stack.region, debug_port)
    try:
        yield embedded_stack, function, debug_port, found
    finally:
        debugging.disable(embedded_stack.port)


def test_a_breakpoint_in_lambda_stops_a_real_upload_and_continue_finishes_it(debugged_stack):
    stack, function, debug_port, found = debugged_stack
    assert found["state"] == "waiting"
    assert debugging.describe(debugging.state(stack.port)) == f"waiting on {HOST}:{debug_port}"
    status = run_ops(["--state-dir", str(stack.state_dir), "status"], stacks.cli_env(), timeout=60)
    assert f"debugger  waiting on {HOST}:{debug_port}" in status.stdout  # what `make local-status` prints

    remote = debug_code_dir(stack.state_dir, function)
    client = attached_client(stack.port, debug_port, FUNCTION_SOURCE_DIR, remote, source_line(INDEX, BREAK_AT))
    try:
        assert debugging.describe(debugging.state(stack.port)) == f"attached ({HOST}:{debug_port})"
        out = stack.outputs
        s3 = stack.client("s3")
        run = uuid.uuid4().hex[:8]
        first, second = f"debug/{run}/first photo.jpg", f"debug/{run}/second.jpg"
        s3.put_object(Bucket=out["source_bucket"], Key=first, Body=photo_jpeg(640, 480, quality=95))

        stopped = client.stopped(WAIT_S)
        frame = client.top_frame(stopped["threadId"])
        assert (Path(frame["source"]["path"]), frame["line"]) == (INDEX, source_line(INDEX, BREAK_AT))
        assert frame["name"] == "handler"
        assert variable(client, frame["id"], "refs", "0", "key") == repr(first)
        assert debugging.state(stack.port)["paused"] is True

        # Sent while the first is stopped: it waits for the one worker, then stops at the breakpoint in its turn.
        s3.put_object(Bucket=out["source_bucket"], Key=second, Body=photo_jpeg(480, 360, quality=95))
        client.resume(stopped["threadId"])
        stopped = client.stopped(WAIT_S)
        frame = client.top_frame(stopped["threadId"])
        assert variable(client, frame["id"], "refs", "0", "key") == repr(second)
        client.resume(stopped["threadId"])

        stacks.poll(
            lambda: {first, second} <= stacks.keys_in(s3, out["destination_bucket"], f"debug/{run}/"),
            timeout=WAIT_S,
            what="both uploads in the destination bucket",
        )
        payloads = take_notifications(stack.client("sqs"), out["notifications_queue_url"], {first, second})
        assert sorted(p["key"] for p in payloads) == sorted([first, second])  # one each: none lost, none retried
        assert {p["status"] for p in payloads} == {"compressed"}
    finally:
        client.close()
    stacks.poll(lambda: debugging.state(stack.port)["state"] == "waiting", timeout=30, what="the debugger detached")


def test_the_dashboard_sidebar_says_waiting_then_attached(debugged_stack, tmp_path, monkeypatch):
    stack, function, debug_port, _ = debugged_stack
    monkeypatch.setenv(
        "DASHBOARD_STACK_FILE", str(write_stack_file(tmp_path, "embedded", stack.endpoint, stack.outputs))
    )
    monkeypatch.setenv("DASHBOARD_STATE_DIR", str(tmp_path / "state"))
    app = str(FUNCTION_SOURCE_DIR.parent / "dashboard" / "app.py")

    def sidebar() -> str:
        st.cache_data.clear()  # Streamlit's caches outlive an AppTest
        st.cache_resource.clear()
        at = AppTest.from_file(app, default_timeout=180).run()
        assert not at.exception, [e.value for e in at.exception]
        return "\n".join(m.value for m in at.sidebar.markdown)

    assert f"**Debugger:** {md(f'waiting on {HOST}:{debug_port}')}" in sidebar()
    client = attached_client(stack.port, debug_port, FUNCTION_SOURCE_DIR, debug_code_dir(stack.state_dir, function))
    try:
        assert f"**Debugger:** {md(f'attached ({HOST}:{debug_port})')}" in sidebar()
    finally:
        client.close()
        st.cache_data.clear()
        st.cache_resource.clear()


HANDLER = """
def handler(event, context):
    key = event["key"]
    return {"key": key, "remaining_ms": context.get_remaining_time_in_millis()}
"""


def test_time_stopped_at_a_breakpoint_does_not_count_against_the_timeout(local_cloud, role_arn, tmp_path):  # noqa: F811
    lam = local_cloud.client("lambda")
    name = f"debug-{uuid.uuid4().hex[:10]}"
    timeout_s = 2
    code = {"ZipFile": zip_bytes({"index.py": HANDLER})}
    lam.create_function(FunctionName=name, Runtime="python3.13", Role=role_arn, Handler="index.handler", Code=code,
                        Timeout=timeout_s, MemorySize=256)  # fmt: skip
    (tmp_path / "index.py").write_text(HANDLER)  # the "checkout" the editor maps onto the worker's code
    debug_port = procs.free_port()
    debugging.enable(local_cloud.port, name, local_cloud.region, debug_port)
    client = None
    try:
        remote = debug_code_dir(local_cloud.state_dir, name)
        client = attached_client(local_cloud.port, debug_port, tmp_path, remote, 4)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(lam.invoke, FunctionName=name, Payload=json.dumps({"key": "stopped.jpg"}))
            stopped = client.stopped(WAIT_S)
            frame = client.top_frame(stopped["threadId"])
            assert variable(client, frame["id"], "key") == repr("stopped.jpg")

            # Stay stopped for longer than the function's timeout (how long, the server says from the worker's word).
            stacks.poll(
                lambda: debugging.state(local_cloud.port)["stopped_s"] > timeout_s + 1,
                timeout=60,
                interval=0.2,
                what="the invocation stopped for longer than its timeout",
            )
            client.resume(stopped["threadId"])
            response = answer.result(timeout=WAIT_S)
        payload = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, payload
        assert payload["key"] == "stopped.jpg"
        assert 0 < payload["remaining_ms"] <= timeout_s * 1000
    finally:
        if client is not None:
            client.close()
        debugging.disable(local_cloud.port)
        lam.delete_function(FunctionName=name)
