"""Backfill on both local stacks: 200 objects put in the source bucket without triggering, backfilled twice.

How the objects get into the bucket without triggering the function: the module fixture saves the source bucket's
notification configuration, replaces it with an empty one, uploads, and puts the saved configuration back exactly as
it was in a ``finally`` (and checks it is back), before any test of this module runs. The stack is shared with the
session's other tests, which run one after another, so none of them uploads while the trigger is off. Every key lives
under a prefix of its own, so other tests' objects in the same bucket do not count.

The first ``image-compressor backfill`` (what ``make backfill`` runs) finds all 200, skips none, queues all, and waits
for their outcomes: the good JPEGs in the destination, the bad ones in the failed bucket, one notification each. The
second run (through ``make backfill``) finds them all with a current outcome and skips every one.

On both local backends (``local_stack``): the backfill keeps at most the function's reserved concurrency of runs
out at once (issue 23), so MiniStack, which starts a worker for every invocation it has not finished, is not flooded
(unpaced, a burst of 200 overloaded a two-core machine until MiniStack's own S3 calls timed out). The Batch
Operations path of the handler is the same on every backend (``tests/unit/test_batch_event.py``).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
import streamlit as st
from image_compressor.notification import parse_message
from PIL import Image
from streamlit.testing.v1 import AppTest

from ops import defaults, stackfile
from tests import stacks
from tests.jpegs import photo_image, photo_jpeg
from tests.stacks import cli_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT_S = 600
GOOD = 184
CLI = str(defaults.ROOT / ".venv" / "bin" / "image-compressor")
APP = str(defaults.ROOT / "dashboard" / "app.py")


def _png() -> bytes:
    buffer = io.BytesIO()
    photo_image(48, 32).save(buffer, "PNG")
    return buffer.getvalue()


def bad_bodies() -> list[bytes]:
    """Sixteen bodies the function must put in the failed bucket: truncated, empty, text, a PNG named .jpg."""
    whole = photo_jpeg(96, 72)
    return [whole[: len(whole) // 2], b"", b"not a jpeg at all", _png()] * 4


def objects(prefix: str) -> dict[str, bytes]:
    """The 200 JPEG-named objects (any case of the suffix), 184 good and 16 bad."""
    suffixes = (".jpg", ".JPG", ".jpeg", ".Jpeg")
    found = {
        f"{prefix}good/{i:03d} photo{suffixes[i % 4]}": photo_jpeg(96, 72, quality=90 + i % 6) for i in range(GOOD)
    }
    found.update({f"{prefix}bad/{i:02d}{suffixes[i % 4]}": body for i, body in enumerate(bad_bodies())})
    return found


@pytest.fixture(scope="module")
def untriggered(local_stack) -> tuple[str, dict[str, bytes]]:
    """Put 200 JPEG-named objects (and two others) in the source bucket with its trigger off; return prefix, bodies."""
    s3 = local_stack.client("s3")
    source = local_stack.outputs["source_bucket"]
    prefix = f"backfill-{uuid.uuid4().hex[:8]}/"
    bodies = objects(prefix)
    saved = _notification(s3, source)
    assert saved.get("LambdaFunctionConfigurations"), "the stack's source bucket should trigger the function"
    s3.put_bucket_notification_configuration(Bucket=source, NotificationConfiguration={})
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            uploads = [(key, body) for key, body in bodies.items()]
            uploads += [(f"{prefix}notes.txt", b"not an image"), (f"{prefix}good/photo.png", _png())]
            list(pool.map(lambda item: s3.put_object(Bucket=source, Key=item[0], Body=item[1]), uploads))
    finally:
        s3.put_bucket_notification_configuration(Bucket=source, NotificationConfiguration=saved)
    assert _notification(s3, source) == saved
    return prefix, bodies


def _notification(s3: Any, bucket: str) -> dict[str, Any]:
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    config.pop("ResponseMetadata", None)
    return config


def _env(local_stack) -> dict[str, str]:
    return {**cli_env(), stackfile.STATE_DIR_ENV: str(local_stack.state_dir)}


@pytest.fixture(scope="module")
def first_run(local_stack, untriggered) -> dict[str, Any]:
    prefix, _ = untriggered
    run = subprocess.run(
        [CLI, "backfill", "--prefix", prefix, "--json", "--wait", str(WAIT_S)],
        env=_env(local_stack),
        capture_output=True,
        text=True,
        timeout=WAIT_S + 300,
    )
    assert run.returncode == 0, f"backfill failed ({run.returncode}):\n{run.stdout}\n{run.stderr}"
    return json.loads(run.stdout)


def test_the_first_run_processes_every_jpeg_once_through_the_function(local_stack, untriggered, first_run):
    prefix, bodies = untriggered

    assert first_run["found"] == 200 and first_run["skipped"] == 0 and first_run["queued"] == 200
    assert first_run["compressed"] + first_run["kept"] == GOOD
    assert first_run["failed"] == 200 - GOOD
    assert first_run["pending"] == first_run["not_queued"] == 0
    s3 = local_stack.client("s3")
    out = local_stack.outputs
    destination = stacks.keys_in(s3, out["destination_bucket"], prefix)
    failed = stacks.keys_in(s3, out["failed_bucket"], prefix)
    assert destination == {k for k in bodies if "/good/" in k}
    assert failed == {k for k in bodies if "/bad/" in k}
    for key in list(failed)[:4]:
        head = s3.head_object(Bucket=out["failed_bucket"], Key=key)
        assert head["Metadata"]["status"] == "failed" and head["Metadata"]["reason"]


def test_each_backfilled_object_is_notified_once(local_stack, untriggered, first_run):
    prefix, bodies = untriggered
    sqs = local_stack.client("sqs")
    url = local_stack.outputs["notifications_queue_url"]
    seen: list[str] = []

    def receive() -> bool:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            try:
                key = parse_message(message["Body"])["key"]
            except ValueError:
                continue
            if key.startswith(prefix):
                seen.append(key)
        return set(bodies) <= set(seen)

    stacks.poll(receive, timeout=120, interval=0.2, what="a notification per backfilled object")
    for _ in range(3):  # a few more looks: nothing was notified twice
        receive()
    assert sorted(seen) == sorted(bodies)


def test_the_outputs_are_smaller_valid_jpegs(local_stack, untriggered, first_run):
    prefix, bodies = untriggered
    s3 = local_stack.client("s3")
    for key in [k for k in bodies if "/good/" in k][:5]:
        data = s3.get_object(Bucket=local_stack.outputs["destination_bucket"], Key=key)["Body"].read()
        assert len(data) <= len(bodies[key])
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.size == (96, 72)


def test_the_dashboard_shows_the_finished_backfill(local_stack, untriggered, first_run, monkeypatch):
    prefix, _ = untriggered
    monkeypatch.setenv(defaults.DASHBOARD_STACK_FILE_ENV, str(local_stack.state_file))
    monkeypatch.delenv(defaults.DASHBOARD_STATE_DIR_ENV, raising=False)  # the stack's own state dir: backfill.json
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=120)
        at.switch_page("views/backfill.py")
        at.run()
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()

    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    shown = {m.label: m.value for m in at.main.metric}
    assert shown["Found"] == shown["Queued"] == "200" and shown["Skipped"] == shown["Pending"] == "0"
    assert shown["Failed"] == str(200 - GOOD)
    assert any(prefix in m.value for m in at.main.markdown)
    assert "finished" in at.main.get("progress")[0].proto.text


def test_the_second_run_through_make_skips_every_object(local_stack, untriggered, first_run):
    prefix, _ = untriggered
    run = subprocess.run(
        ["make", "--no-print-directory", "-s", "backfill", f"PREFIX={prefix}", "TARGET=local"],
        cwd=defaults.ROOT,
        env=_env(local_stack),
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert run.returncode == 0, f"make backfill failed:\n{run.stdout}\n{run.stderr}"
    # The summary table's row: found, skipped, queued, compressed, kept, failed, pending.
    rows = [list(map(int, re.findall(r"\d+", line))) for line in run.stdout.splitlines() if re.search(r"│\s*\d", line)]
    assert rows == [[200, 200, 0, 0, 0, 0, 0]], run.stdout


def test_bad_input_gets_a_clear_error(local_stack, untriggered):
    run = partial(subprocess.run, env=_env(local_stack), capture_output=True, text=True, timeout=120)

    unknown = run([CLI, "backfill", "--prefix", "no-such-prefix/"])
    wrong = run([CLI, "backfill", "--target", "prod"])

    assert unknown.returncode == 2 and "nothing under the prefix 'no-such-prefix/'" in unknown.stderr
    assert wrong.returncode == 2 and "TARGET=local" in wrong.stderr
