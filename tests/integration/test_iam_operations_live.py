"""The operations side of IAM enforcement on real processes: ``python -m ops up`` refuses a bad mode before anything
starts, ``make local-status`` names the mode and counts the denials, ``image-compressor iam-report`` (``make
iam-report``) after a real upload, and the dashboard's Permissions page (AppTest) listing a real denial.

A denial is made the way a user's own code would meet one: an IAM user created through the embedded cloud's IAM (so
its access key is not the administrator's) with no policy, calling S3; the user is removed again.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from botocore.exceptions import ClientError
from streamlit.testing.v1 import AppTest

from dashboard.text import md
from ops import defaults, iamrecord, procs, stackfile
from ops.launch import run_ops
from ops.stack import read_stack_file
from tests.jpegs import photo_jpeg
from tests.stacks import StackInfo, cli_env, client_as, keys_in, poll, write_stack_file

pytestmark = [pytest.mark.integration]

CLI = str(defaults.ROOT / ".venv" / "bin" / "image-compressor")
APP = str(defaults.ROOT / "dashboard" / "app.py")
OUTPUTS = {name: f"x-{name}" for name in stackfile.STACK_OUTPUTS}


def _report(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [CLI, "iam-report", "--state-dir", str(state_dir), *args]
    return subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=180, check=False)


# -- without a stack ---------------------------------------------------------------------------------------------------


def test_up_refuses_a_mode_that_is_not_a_switch_before_anything_starts(tmp_path):
    state = tmp_path / "state"

    result = run_ops(
        ["--state-dir", str(state), "up", "--backend", "embedded", "--port", str(procs.free_port()), "--no-dashboard"],
        cli_env() | {"ENFORCE_IAM": "maybe"},
        timeout=120,
    )

    assert result.returncode == 1
    assert "ENFORCE_IAM=maybe is not a switch: use ENFORCE_IAM=1" in result.stderr
    assert "nothing was started" in result.stderr
    assert not state.exists()  # no lock, no pid file, no server


def test_make_local_up_passes_the_iam_settings_through():
    dry = subprocess.run(
        ["make", "-n", "local-up", "ENFORCE_IAM=0", "IAM_SOFT_MODE=", "BACKEND=embedded"],
        cwd=defaults.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    line = next(line for line in dry.stdout.splitlines() if "-m ops up" in line)
    assert line.startswith('ENFORCE_IAM="0" IAM_SOFT_MODE=""')
    assert (
        "iam-report --target"
        in subprocess.run(
            ["make", "-n", "iam-report"], cwd=defaults.ROOT, capture_output=True, text=True, timeout=60, check=False
        ).stdout
    )


def test_iam_report_on_a_stopped_local_cloud_says_to_start_it(tmp_path):
    write_stack_file(tmp_path, "embedded", f"http://localhost:{procs.free_port()}", OUTPUTS)

    result = _report(tmp_path)

    assert result.returncode == 2
    assert "does not answer" in result.stderr and "make local-up" in result.stderr


def test_iam_report_on_ministack_says_only_the_embedded_cloud_records_decisions(tmp_path):
    with socket.socket() as listener:  # something answers, as MiniStack would
        listener.bind((defaults.LOCAL_HOST, 0))
        listener.listen()
        port = listener.getsockname()[1]
        write_stack_file(tmp_path, "ministack", f"http://localhost:{port}", OUTPUTS)

        result = _report(tmp_path)

    assert result.returncode == 2
    assert "recorded by the embedded local cloud only" in result.stderr
    assert "make local-up BACKEND=embedded" in result.stderr


# -- on the embedded stack ---------------------------------------------------------------------------------------------


@pytest.fixture
def stranger(embedded_stack: StackInfo) -> Iterator[tuple[Any, str]]:
    """An IAM user of the embedded cloud with an access key and no policy: an S3 client calling as it, and its name."""
    iam = embedded_stack.client("iam")
    name = f"iam-ops-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    try:
        yield client_as(embedded_stack.endpoint, embedded_stack.region, "s3", key), name
    finally:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=name)


def _denied_read(s3: Any, bucket: str) -> str:
    """Read an object the user has no permission for (the call must fail with 403); return its key."""
    key = f"iam-ops/{uuid.uuid4().hex[:8]}.jpg"
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key=key)
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    return key


def test_local_status_names_the_mode_and_counts_the_denials(embedded_stack, stranger):
    _denied_read(stranger[0], embedded_stack.outputs["source_bucket"])
    total = iamrecord.fetch(read_stack_file(embedded_stack.state_file)).denials_total

    result = run_ops(["--state-dir", str(embedded_stack.state_dir), "status"], cli_env(), timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert total >= 1
    assert f"IAM: enforced (ENFORCE_IAM=1), {total} denial{'' if total == 1 else 's'}" in result.stdout.splitlines()


def test_iam_report_after_an_upload_counts_the_reads_and_flags_an_unused_grant(embedded_stack):
    out = embedded_stack.outputs
    cleared = _report(embedded_stack.state_dir, "--clear")  # this report's run starts here
    assert cleared.returncode == 0, cleared.stderr
    key = f"iam-ops/{uuid.uuid4().hex[:8]}.jpg"
    s3 = embedded_stack.client("s3")
    s3.put_object(Bucket=out["source_bucket"], Key=key, Body=photo_jpeg(640, 480))
    poll(lambda: key in keys_in(s3, out["destination_bucket"], "iam-ops/"), timeout=90, what="the compressed upload")

    result = _report(embedded_stack.state_dir, "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    role = embedded_stack.client("lambda").get_function_configuration(FunctionName=out["function_name"])["Role"]
    assert (report["role_arn"], report["mode"]) == (role, "enforce")
    grants = {(g["grant"]["action"], g["grant"]["resource"]): g for g in report["grants"]}
    source = f"arn:aws:s3:::{out['source_bucket']}"
    read = grants[("s3:GetObject", f"{source}/*")]
    assert read["used"]
    assert ("s3:GetObject", f"{source}/{key}") in [(c["action"], c["resource"]) for c in read["calls"]]
    assert not grants[("s3:DeleteObject", f"arn:aws:s3:::{out['destination_bucket']}/*")]["used"]  # nothing superseded
    text = _report(embedded_stack.state_dir).stdout
    delete = next(line for line in text.splitlines() if "s3:DeleteObject" in line)
    assert "never used during this run" in delete and "[RemoveSupersededOutputs]" in delete


def _page(stack_file: Path, monkeypatch: pytest.MonkeyPatch, state: Path) -> AppTest:
    """Run the dashboard's Permissions page for ``stack_file`` with empty Streamlit caches (they outlive an AppTest)."""
    monkeypatch.setenv("DASHBOARD_STACK_FILE", str(stack_file))
    monkeypatch.setenv("DASHBOARD_STATE_DIR", str(state))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=180)
        at.switch_page("views/permissions.py")
        return at.run()
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()


def test_the_permissions_page_lists_a_real_denial_newest_first_and_the_sidebar_says_the_mode(
    embedded_stack, stranger, tmp_path, monkeypatch
):
    s3, user = stranger
    key = _denied_read(s3, embedded_stack.outputs["source_bucket"])
    stack_file = write_stack_file(tmp_path, "embedded", embedded_stack.endpoint, embedded_stack.outputs)

    at = _page(stack_file, monkeypatch, tmp_path / "state")

    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert f"**IAM:** {md('enforced (ENFORCE_IAM=1), ')}" in "\n".join(m.value for m in at.sidebar.markdown)
    newest = at.main.dataframe[0].value.iloc[0]
    assert newest["principal"].endswith(f":user/{user}")
    assert (newest["action"], newest["resource"]) == (
        "s3:GetObject",
        f"arn:aws:s3:::{embedded_stack.outputs['source_bucket']}/{key}",
    )
    assert "identity-based policy" in newest["reason"]
    assert int({m.label: m.value for m in at.main.metric}["Denials"]) >= 1


def test_the_permissions_page_says_plainly_that_other_backends_record_nothing(embedded_stack, tmp_path, monkeypatch):
    # A stack file that says MiniStack, on a live endpoint: the page runs, and says where decisions are recorded.
    stack_file = write_stack_file(tmp_path, "ministack", embedded_stack.endpoint, embedded_stack.outputs)

    at = _page(stack_file, monkeypatch, tmp_path / "state")

    assert not at.exception, [e.value for e in at.exception]
    assert "recorded by the embedded local cloud only" in at.main.info[0].value
    assert "MiniStack checks no permissions" in "\n".join(c.value for c in at.main.caption)
    assert "**IAM:** not enforced" in "\n".join(m.value for m in at.sidebar.markdown)
