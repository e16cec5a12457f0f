"""``image-compressor reprocess`` (``make reprocess``) on the embedded stack: a failed image goes through the function
again, its new outcome is reported, bad keys get a clear error and nothing else happens.

The dashboard's Failed page calls the same :func:`ops.reprocess.reprocess` (tests/integration/test_dashboard_app.py).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import pytest

from ops import defaults, reprocess
from ops.stack import resolve
from tests.jpegs import photo_jpeg
from tests.stacks import StackInfo, cli_env

pytestmark = [pytest.mark.integration]

CLI = str(defaults.ROOT / ".venv" / "bin" / "image-compressor")
CORRUPT = b"not a JPEG, only named like one\n" * 8


def _landed(stack: StackInfo, key: str, timeout: float = 90) -> dict[str, Any]:
    s3 = stack.client("s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in ("destination_bucket", "failed_bucket"):
            try:
                return s3.head_object(Bucket=stack.outputs[name], Key=key) | {"Bucket": stack.outputs[name]}
            except s3.exceptions.ClientError:
                pass
        time.sleep(0.2)
    raise AssertionError(f"{key} got no outcome within {timeout:.0f} s")


def _cli(stack: StackInfo, *args: str) -> subprocess.CompletedProcess[str]:
    command = [CLI, "reprocess", "--target", "local", "--state-dir", str(stack.state_dir), *args]
    return subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=180, check=False)


def test_a_failed_image_reprocessed_from_the_command_line_fails_again_with_its_reason(
    embedded_stack: StackInfo,
) -> None:
    key = f"reprocess/{uuid.uuid4().hex[:8]}/bad name+ü.jpg"
    embedded_stack.client("s3").put_object(Bucket=embedded_stack.outputs["source_bucket"], Key=key, Body=CORRUPT)
    first = _landed(embedded_stack, key)
    assert first["Bucket"] == embedded_stack.outputs["failed_bucket"]

    run = _cli(embedded_stack, key, "--json")

    assert run.returncode == 0, run.stderr
    [item] = json.loads(run.stdout)["items"]
    assert (item["key"], item["state"], item["source_etag"]) == (key, "failed", first["ETag"].strip('"'))
    assert item["reason"] == first["Metadata"]["reason"]
    assert f"failed again    {key}: {first['Metadata']['reason']}" in run.stderr
    again = embedded_stack.client("s3").head_object(Bucket=embedded_stack.outputs["failed_bucket"], Key=key)
    assert again["Metadata"]["source-etag"] == first["ETag"].strip('"') and "retry-requested" not in again["Metadata"]


def test_a_fixed_image_reprocessed_through_ops_is_compressed_and_its_stale_failed_copy_removed(
    embedded_stack: StackInfo,
) -> None:
    """The failed copy of an upload whose original is gone: copied back to the source, compressed, copy forgotten."""
    key = f"reprocess/{uuid.uuid4().hex[:8]}/fixed.jpg"
    data = photo_jpeg(320, 240)
    s3, out = embedded_stack.client("s3"), embedded_stack.outputs
    s3.put_object(Bucket=out["failed_bucket"], Key=key, Body=data, Metadata={"status": "failed", "reason": "simulated"})
    stack = resolve("local", state_dir=embedded_stack.state_dir)
    seen: list[str] = []

    summary = reprocess.reprocess(stack, [key, key], wait_s=90, on_item=lambda item: seen.append(item.state))

    assert [item.state for item in summary.items] == seen == ["compressed"]  # a key named twice is done once
    assert s3.head_object(Bucket=out["destination_bucket"], Key=key)["Metadata"]["status"] == "compressed"
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=out["failed_bucket"], Key=key)


def test_keys_that_cannot_be_reprocessed_are_named_and_nothing_is_invoked(embedded_stack: StackInfo) -> None:
    key = f"reprocess/{uuid.uuid4().hex[:8]}/never-failed.jpg"
    out = embedded_stack.outputs

    run = _cli(embedded_stack, key, "--wait", "0")
    no_stack = subprocess.run(
        [CLI, "reprocess", "--target", "aws", key],
        env=cli_env() | {"AWS_CONFIG_FILE": "/dev/null"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 1
    assert f"not reprocessed {key}: {key} is not in the failed bucket {out['failed_bucket']}" in run.stdout
    assert "0 compressed" in run.stdout and "1 not reprocessed" in run.stdout
    assert no_stack.returncode == 2 and "make deploy-aws" in no_stack.stderr


def test_make_reprocess_without_keys_says_how_to_name_them() -> None:
    run = subprocess.run(
        ["make", "--no-print-directory", "reprocess"],
        cwd=defaults.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2 and 'make reprocess KEYS="photos/a.jpg photos/b.jpg"' in run.stderr
