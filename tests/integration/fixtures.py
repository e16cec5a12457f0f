"""Session fixtures for tests that need the embedded local cloud; import them into a conftest to use them.

``tests/integration/conftest.py`` imports them; another test folder (``tests/browser``) can do the same::

    from tests.integration.fixtures import embedded_stack, local_cloud  # noqa: F401

``local_cloud``
    A fresh embedded local cloud server (moto + local Lambda executor) on a free port of 127.0.0.1, with its
    state in a temporary directory; a user's ``make local-up`` on port 4566 is left alone. Yields a
    :class:`LocalCloud` (``endpoint``, ``region``, ``port``, ``state_dir``, ``client(service)``). Asynchronous
    retries wait 0.2 s and 0.4 s instead of 1 s and 2 s.

``embedded_stack``
    The real stack, once per test session, on an embedded local cloud of its own (free port, temporary state
    directory): ``python -m tools.build`` builds ``build/lambda.zip`` and ``build/pillow-layer.zip``, then
    ``python -m localcloud up --backend embedded --no-dashboard`` starts the server and applies
    ``terraform/envs/local`` with tflocal (about a minute: each SQS queue takes ~25 s against moto). Yields a
    :class:`StackInfo` with ``endpoint``, ``region``, ``outputs`` (``source_bucket``, ``destination_bucket``,
    ``failed_bucket``, ``sns_topic_arn``, ``notifications_queue_url``, ``function_name``, ``log_group_name``,
    ``dlq_url``, ...), ``state_file`` (its ``stack.json``, e.g. for ``DASHBOARD_STACK_FILE``) and
    ``client(service)``. At the end of the session the stack is destroyed with Terraform, the teardown checks
    that nothing of it is left (an error there fails the run), and ``python -m localcloud down`` stops the server.

Both need ``terraform`` >= 1.6 on PATH and, offline, ``TF_PROVIDER_MIRROR`` (``make`` exports it). Each exists
once per test process even when several ``conftest.py`` files import it (under pytest-xdist: once per worker).

Every server they start is stopped on every path (a failing, timed-out or interrupted ``up`` included), and is
started with ``--exit-with <pytest's pid>`` (``LOCALCLOUD_EXIT_WITH_PID``): when the test process dies without
tearing down (``kill -9``, a crashed CI runner), the server notices within a second and stops with its workers.
The end of each server's log is kept as ``server-session.log`` in its state directory (``down`` removes
``server.log``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcloud import procs, state

PROJECT_ROOT = Path(__file__).resolve().parents[2]

REGION = "eu-west-1"
TEST_RETRY_DELAYS = "0.2,0.4"
# Longer than localcloud.tf's wait for another tflocal run in the same Terraform root (900 s) plus an apply, so a
# busy root ends in tflocal's own error message (which names the run holding it), not in a bare timeout here.
UP_TIMEOUT_S = 1800
DOWN_TIMEOUT_S = 120


def make_client(endpoint: str, region: str, service: str) -> Any:
    """Return a boto3 client for ``service`` against ``endpoint`` with the local cloud's test credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120),
    )


@dataclass
class LocalCloud:
    """A running embedded local cloud server started for the test session."""

    endpoint: str
    region: str
    port: int
    state_dir: Path
    pid: int

    def client(self, service: str) -> Any:
        """Return a boto3 client for ``service`` on this server."""
        return make_client(self.endpoint, self.region, service)


@dataclass
class StackInfo:
    """The applied stack: where it is and its Terraform outputs."""

    endpoint: str
    region: str
    outputs: dict[str, Any] = field(default_factory=dict)
    state_dir: Path | None = None
    port: int = 0
    up_output: str = ""

    @property
    def state_file(self) -> Path | None:
        """The stack's ``stack.json`` (what ``make local-up`` writes to ``.local/stack.json``)."""
        return self.state_dir / state.STATE_FILE if self.state_dir else None

    def client(self, service: str) -> Any:
        """Return a boto3 client for ``service`` against the stack's endpoint."""
        return make_client(self.endpoint, self.region, service)


# One instance per process even when several conftest files import these fixtures (pytest then holds one
# fixture definition per conftest): the first user starts it, the last one to finish tears it down.
_SHARED: dict[str, list[Any]] = {}


@contextlib.contextmanager
def _shared(name: str, start: Callable[[], tuple[Any, Callable[[], None]]]) -> Iterator[Any]:
    entry = _SHARED.get(name)
    if entry is None:
        value, stop = start()
        entry = _SHARED[name] = [value, 0, stop]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del _SHARED[name]
            entry[2]()


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Start an embedded local cloud server on a free port for the session; stop it (and its workers) after."""

    def start() -> tuple[LocalCloud, Callable[[], None]]:
        state_dir = tmp_path_factory.mktemp("localcloud")
        port = procs.free_port()
        handle = procs.start_server(port, state_dir, retry_delays=TEST_RETRY_DELAYS, exit_with=os.getpid())

        def stop() -> None:
            assert procs.stop_group(handle.pid), f"the local cloud server (pid {handle.pid}) did not stop"

        return LocalCloud(handle.endpoint, REGION, port, state_dir, handle.pid), stop

    with _shared("local_cloud", start) as cloud:
        yield cloud


def run_cli(args: list[str], env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``python -m localcloud <args>`` in the project root and return the finished process (output captured).

    The command runs in a process group of its own. When it does not finish within ``timeout`` seconds, or the
    wait is interrupted (Ctrl-C), the whole group (terraform and its provider included) is stopped before
    ``subprocess.TimeoutExpired`` (with the output so far) or the interruption is raised.
    """
    cmd = [sys.executable, "-m", "localcloud", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as exc:
        procs.stop_group(proc.pid, timeout=10)
        stdout, stderr = proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise subprocess.TimeoutExpired(cmd, timeout, output=stdout, stderr=stderr) from None
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def cli_env() -> dict[str, str]:
    """Return the environment for the local cloud CLI in tests.

    Short async retry delays, no inherited state directory, and ``LOCALCLOUD_EXIT_WITH_PID`` set to this process,
    so a server that ``up`` starts stops when the test process is gone.
    """
    env = dict(os.environ)
    env.pop("LOCALCLOUD_STATE_DIR", None)
    env["LOCALCLOUD_RETRY_DELAYS"] = TEST_RETRY_DELAYS
    # A server started by `up` for the tests stops by itself when this test process dies.
    env["LOCALCLOUD_EXIT_WITH_PID"] = str(os.getpid())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def leftovers(info: StackInfo) -> list[str]:
    """Return the stack's resources that still exist on its server (empty after a clean destroy)."""
    out = info.outputs
    found: list[str] = []
    names = {b["Name"] for b in info.client("s3").list_buckets().get("Buckets", [])}
    found += [f"bucket {out[k]}" for k in ("source_bucket", "destination_bucket", "failed_bucket") if out[k] in names]
    functions = {f["FunctionName"] for f in info.client("lambda").list_functions().get("Functions", [])}
    if out["function_name"] in functions:
        found.append(f"function {out['function_name']}")
    queues = set(info.client("sqs").list_queues().get("QueueUrls", []))
    queue_names = {url.rsplit("/", 1)[-1] for url in queues}
    for key in ("notifications_queue_url", "dlq_url"):
        if out.get(key) and out[key].rsplit("/", 1)[-1] in queue_names:
            found.append(f"queue {out[key]}")
    topics = {t["TopicArn"] for t in info.client("sns").list_topics().get("Topics", [])}
    if out["sns_topic_arn"] in topics:
        found.append(f"topic {out['sns_topic_arn']}")
    groups = info.client("logs").describe_log_groups(logGroupNamePrefix=out["log_group_name"]).get("logGroups", [])
    found += [f"log group {g['logGroupName']}" for g in groups if g["logGroupName"] == out["log_group_name"]]
    return found


DESTROY_TIMEOUT_S = 600


def destroy_stack(info: StackInfo, port: int) -> None:
    """Run ``terraform destroy`` on the stack (through ``localcloud.tf``) in a process group of its own.

    A destroy that hangs (a provider retrying for ever) is killed with its terraform and provider processes after
    :data:`DESTROY_TIMEOUT_S` seconds and reported, instead of blocking the test session.
    """
    assert info.state_dir is not None
    code = (
        "import sys; from pathlib import Path; from localcloud import tf; "
        "tf.destroy(tf.LOCAL_ROOT, {'region': sys.argv[1]}, local=True, endpoint=sys.argv[2], "
        "state_dir=Path(sys.argv[3]), region=sys.argv[1])"
    )
    args = [sys.executable, "-c", code, info.region, f"http://127.0.0.1:{port}", str(info.state_dir / "tfstate")]
    proc = subprocess.Popen(
        args, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=DESTROY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        procs.stop_group(proc.pid, timeout=5)
        output, _ = proc.communicate()
        raise AssertionError(
            f"terraform destroy did not finish within {DESTROY_TIMEOUT_S} s:\n{output[-3000:]}"
        ) from None
    assert proc.returncode == 0, f"terraform destroy failed:\n{output[-3000:]}"


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """Build, start an embedded local cloud and apply the real stack once per session; destroy and stop after."""
    with _shared("embedded_stack", lambda: _start_stack(tmp_path_factory)) as info:
        yield info


def _start_stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[StackInfo, Callable[[], None]]:
    env = cli_env()
    build = subprocess.run(
        [sys.executable, "-m", "tools.build"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    if build.returncode != 0:
        pytest.fail(f"`python -m tools.build` failed:\n{build.stdout}\n{build.stderr}")
    state_dir = tmp_path_factory.mktemp("embedded-stack")
    port = procs.free_port()
    base = ["--state-dir", str(state_dir)]
    ready = False
    try:
        try:
            up_args = [*base, "up", "--backend", "embedded", "--port", str(port), "--no-dashboard"]
            up = run_cli(up_args, env, UP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`python -m localcloud up` did not finish within {exc.timeout} s:\n{exc.output}\n{exc.stderr}")
        if up.returncode != 0:
            pytest.fail(f"`python -m localcloud up` failed:\n{up.stdout}\n{up.stderr}")
        current = state.load(state_dir)
        assert current is not None, f"up succeeded but wrote no {state.STATE_FILE}:\n{up.stdout}"
        info = StackInfo(current.endpoint, current.region, current.outputs, state_dir, port, up.stdout)
        ready = True
    finally:
        if not ready:  # failed, timed out or interrupted: stop whatever `up` got to start
            _down(state_dir, env)

    def stop() -> None:
        left: list[str] = []
        try:
            destroy_stack(info, port)
            left = leftovers(info)
        finally:
            down = _down(state_dir, env)
        assert down.returncode == 0, f"`python -m localcloud down` failed:\n{down.stdout}\n{down.stderr}"
        assert not left, f"terraform destroy left resources behind: {left}"

    return info, stop


def _down(state_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Keep the end of the server's log, run ``python -m localcloud down``; stop the recorded server if that fails.

    Returns the finished ``down`` (a stand-in with return code 1 and the reason when it timed out).
    """
    log_path = state_dir / "server.log"
    with contextlib.suppress(OSError):
        (state_dir / "server-session.log").write_text(procs.tail(log_path, 2000) + "\n")
    recorded = procs.PidFile(state_dir / "server.pid").running_pid(procs.SERVER_MARKER)
    try:
        down = run_cli(["--state-dir", str(state_dir), "down"], env, DOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        down = subprocess.CompletedProcess(exc.cmd, 1, exc.output or "", f"timed out after {exc.timeout} s")
    if recorded is not None and procs.pid_alive(recorded):
        procs.stop_group(recorded)
    return down


def poll(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3, what: str = "condition") -> Any:
    """Call ``check`` every ``interval`` seconds until it returns something truthy, and return that.

    Raises ``AssertionError`` naming ``what`` when ``timeout`` seconds pass first (a bounded wait, not a timing
    assertion).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:.0f} s")
        time.sleep(interval)
