"""The one launcher per kind of process: the local cloud, the dashboard, a stack apply (and ``python -m ops``).

``make``, the tests' fixtures and the bench start these processes through this module only, so they all get the
same command line, the same health wait and the same clean-up on failure:

:func:`start_localcloud`
    ``python -m localcloud.server`` detached on a port, waited for until its health check answers.
:func:`start_ministack`
    ``python -m localcloud.ministack`` (MiniStack behind the local cloud's guard, on the interpreter of its own venv
    ``.venv-ministack``) detached on a port, waited for until its health check answers.
:func:`dashboard_command`, :func:`start_dashboard`
    ``streamlit run dashboard/app.py`` bound to 127.0.0.1: detached with a health wait (``make local-up``, the
    browser tests) or in the foreground (``make dashboard``).
:func:`apply_local_stack`, :func:`destroy_local_stack`
    ``terraform/envs/local`` applied to (destroyed on) a local cloud with tflocal, state in a directory of its own.
:func:`run_ops`, :func:`stack_up`, :func:`stack_down`
    ``python -m ops up|down`` (what ``make local-up``/``local-down`` run) in a process group of its own that is
    stopped on timeout or interrupt: how the tests and the bench bring a whole stack up and down.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud.server import HEALTH_PATH, SNAPSHOT_PATH
from ops import defaults, procs, stackfile, terraform
from ops.procs import LocalCloudError, get_json, pid_alive, spawn, stop_group, tail, wait_for

# -- the local cloud -----------------------------------------------------------------------------------------------


def localcloud_health(port: int, host: str = defaults.LOCAL_HOST) -> dict[str, Any] | None:
    """Return the health document of an embedded local cloud on ``host:port``, or ``None`` if none answers there."""
    data = get_json(f"http://{host}:{port}{HEALTH_PATH}")
    return data if data and data.get("service") == "localcloud" else None


@dataclass(frozen=True, slots=True)
class ServerHandle:
    """A running embedded local cloud server."""

    pid: int
    host: str
    port: int
    log_path: Path

    @property
    def endpoint(self) -> str:
        """Return the server's URL, ``http://<host>:<port>``."""
        return f"http://{self.host}:{self.port}"


SERVER_MARKER = "localcloud.server"


def start_localcloud(
    port: int,
    state_dir: Path,
    host: str = defaults.LOCAL_HOST,
    retry_delays: str | None = None,
    concurrency: int | None = None,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
    exit_with: int | None = None,
    on_spawn: Callable[[int], None] | None = None,
    snapshot_file: Path | None = None,
    restore: Path | None = None,
) -> ServerHandle:
    """Start ``python -m localcloud.server`` detached on ``host:port`` and wait until its health check answers.

    The server's log is ``state_dir/server.log``, its Lambda cache ``state_dir/lambda-cache``. ``snapshot_file``
    is where :func:`snapshot_localcloud` makes it save its state; ``restore`` a file it starts from (see
    :func:`restored_from`: a file it cannot load leaves it empty). With ``exit_with``
    the server stops by itself once that process is gone (tests pass their own pid). ``on_spawn`` is called with
    the server's pid right after it was started, before the wait, so a caller can record it even when it is
    interrupted while waiting.

    Raises
    ------
    LocalCloudError
        When the port is taken, or the server exits or does not answer within ``timeout`` seconds (the message
        includes the end of its log).
    """
    if procs.port_in_use(port, host):
        raise LocalCloudError(
            f"port {port} on {host} is already in use by another program; stop it, or choose another port "
            f"(python -m ops up --port N)"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "server.log"
    cmd = [sys.executable, "-m", SERVER_MARKER, "--host", host, "--port", str(port)]
    cmd += ["--cache-dir", str(state_dir / "lambda-cache")]
    if retry_delays:
        cmd += ["--retry-delays", retry_delays]
    if concurrency:
        cmd += ["--concurrency", str(concurrency)]
    if exit_with is not None:
        cmd += ["--exit-with", str(exit_with)]
    if snapshot_file is not None:
        cmd += ["--snapshot-file", str(snapshot_file)]
    if restore is not None:
        cmd += ["--restore", str(restore)]
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    pid = spawn(cmd, log_path, env=child_env, cwd=defaults.ROOT)
    handle = ServerHandle(pid, host, port, log_path)
    try:
        if on_spawn is not None:
            on_spawn(pid)
    except BaseException:
        stop_group(pid, 5)
        raise

    def ready() -> bool:
        return not pid_alive(pid) or localcloud_health(port, host) is not None

    try:
        wait_for(ready, timeout, 0.2)
    except BaseException:  # interrupted (KeyboardInterrupt, a signal turned into an exception): leave nothing behind
        stop_group(pid, 5)
        raise
    if not pid_alive(pid) or localcloud_health(port, host) is None:
        stop_group(pid, 5)
        raise LocalCloudError(
            f"the local cloud server did not start on {host}:{port}; the end of {log_path}:\n{tail(log_path)}"
        )
    return handle


def restored_from(port: int, host: str = defaults.LOCAL_HOST) -> tuple[str | None, str | None]:
    """Return the snapshot file the embedded cloud on ``host:port`` started from and why a restore failed.

    ``(file, None)`` after a restore, ``(None, reason)`` when the file could not be loaded (the cloud is empty),
    ``(None, None)`` when it was not asked to restore or does not answer.
    """
    info = (localcloud_health(port, host) or {}).get("snapshot") or {}
    return info.get("restored_from"), info.get("restore_error")


def snapshot_localcloud(port: int, host: str = defaults.LOCAL_HOST, timeout: float = 120.0) -> dict[str, Any]:
    """Make the embedded cloud on ``host:port`` save its AWS state to its ``--snapshot-file``; return its summary.

    Raises
    ------
    LocalCloudError
        When the server refuses or fails (the message is the server's reason).
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://{host}:{port}{SNAPSHOT_PATH}", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error")
        except ValueError:
            reason = None
        raise LocalCloudError(f"the local cloud did not save its state: {reason or exc}") from None
    except (OSError, ValueError) as exc:
        raise LocalCloudError(f"the local cloud did not save its state: {exc}") from None


# -- MiniStack -----------------------------------------------------------------------------------------------------

MINISTACK_MARKER = "localcloud.ministack"
#: MiniStack's health endpoint (``localcloud.ministack.HEALTH_PATH``; ops imports nothing of that module).
MINISTACK_HEALTH = "/_ministack/health"


def ministack_health(port: int, host: str = defaults.LOCAL_HOST) -> dict[str, Any] | None:
    """Return MiniStack's health document on ``host:port``, or ``None`` if no MiniStack answers there."""
    data = get_json(f"http://{host}:{port}{MINISTACK_HEALTH}")
    return data if data and isinstance(data.get("services"), dict) and "edition" in data else None


def ministack_python() -> Path:
    """Return the interpreter of MiniStack's venv.

    Raises
    ------
    LocalCloudError
        When the venv is missing, naming the make target that creates it.
    """
    python = defaults.MINISTACK_PYTHON
    if not python.is_file():
        raise LocalCloudError(
            f"MiniStack's venv is missing ({python}); run `make install` (it needs Python 3.13: python3.13 on PATH "
            "or `pyenv install 3.13`)"
        )
    return python


def start_ministack(
    port: int,
    state_dir: Path,
    host: str = defaults.LOCAL_HOST,
    region: str = defaults.DEFAULT_REGION,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
    exit_with: int | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> ServerHandle:
    """Start ``python -m localcloud.ministack`` detached on ``host:port`` and wait until its health check answers.

    It runs on MiniStack's venv (:func:`ministack_python`) in the project root (for the ``localcloud`` package), its
    log is ``state_dir/ministack.log`` and its temporary files (code of the Lambda functions, its pid file) go to
    ``state_dir/ministack-tmp``. ``exit_with`` and ``on_spawn`` work as in :func:`start_localcloud`; without
    ``exit_with``, ``LOCALCLOUD_EXIT_WITH_PID`` in the environment is honoured.

    Raises
    ------
    LocalCloudError
        When the venv is missing, the port is taken, or MiniStack exits or does not answer within ``timeout``
        seconds (the message includes the end of its log).
    """
    python = ministack_python()
    if procs.port_in_use(port, host):
        raise LocalCloudError(
            f"port {port} on {host} is already in use by another program; stop it, or choose another port "
            f"(python -m ops up --port N)"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "ministack.log"
    tmp = state_dir / "ministack-tmp"
    tmp.mkdir(exist_ok=True)
    cmd = [str(python), "-m", MINISTACK_MARKER, "--host", host, "--port", str(port), "--region", region]
    child_env = dict(os.environ if env is None else env)
    exit_with = exit_with or (
        int(child_env["LOCALCLOUD_EXIT_WITH_PID"]) if child_env.get("LOCALCLOUD_EXIT_WITH_PID") else None
    )
    if exit_with is not None:
        cmd += ["--exit-with", str(exit_with)]
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    child_env["TMPDIR"] = str(tmp)
    # The project's own venv must not leak into MiniStack's interpreter or its Lambda workers.
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        child_env.pop(name, None)
    pid = spawn(cmd, log_path, env=child_env, cwd=defaults.ROOT)
    handle = ServerHandle(pid, host, port, log_path)
    try:
        if on_spawn is not None:
            on_spawn(pid)
        wait_for(lambda: not pid_alive(pid) or ministack_health(port, host) is not None, timeout, 0.3)
    except BaseException:
        stop_group(pid, 5)
        raise
    if not pid_alive(pid) or ministack_health(port, host) is None:
        stop_group(pid, 5)
        raise LocalCloudError(f"MiniStack did not start on {host}:{port}; the end of {log_path}:\n{tail(log_path)}")
    return handle


# -- the dashboard -------------------------------------------------------------------------------------------------

STREAMLIT_MARKER = "streamlit"
DASHBOARD_APP = defaults.ROOT / "dashboard" / "app.py"


def dashboard_command(port: int = defaults.DASHBOARD_PORT, *, file_watcher: str | None = None) -> list[str]:
    """Return the command line that serves the dashboard on ``127.0.0.1:port`` (headless, no usage statistics).

    ``file_watcher`` is Streamlit's ``server.fileWatcherType`` (``none`` for tests); ``None`` keeps Streamlit's
    default (reload on save).
    """
    streamlit = Path(sys.executable).parent / "streamlit"
    cmd = [str(streamlit)] if streamlit.is_file() else [sys.executable, "-m", "streamlit"]
    cmd += ["run", str(DASHBOARD_APP), "--server.address", defaults.LOCAL_HOST, "--server.port", str(port)]
    cmd += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    if file_watcher:
        cmd += ["--server.fileWatcherType", file_watcher]
    return cmd


def dashboard_env(
    stack_file: Path | None = None, state_dir: Path | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Return the dashboard's environment: ``base`` (default ``os.environ``) with the stack file and state dir set."""
    env = dict(os.environ if base is None else base)
    if stack_file is not None:
        env[defaults.DASHBOARD_STACK_FILE_ENV] = str(stack_file)
    if state_dir is not None:
        env[defaults.DASHBOARD_STATE_DIR_ENV] = str(state_dir)
    return env


def dashboard_healthy(port: int, host: str = defaults.LOCAL_HOST) -> bool:
    """Return True when Streamlit's health endpoint on ``host:port`` answers 200."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/_stcore/health", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class DashboardHandle:
    """A running dashboard: its process (group leader), URL, log and command line."""

    pid: int
    port: int
    url: str
    log_path: Path
    cmd: tuple[str, ...]


def start_dashboard(
    port: int,
    log_path: Path,
    *,
    stack_file: Path | None = None,
    state_dir: Path | None = None,
    file_watcher: str | None = None,
    timeout: float = 60.0,
    on_spawn: Callable[[int, list[str]], None] | None = None,
) -> DashboardHandle:
    """Start the dashboard detached on ``127.0.0.1:port`` and wait until Streamlit's health check answers.

    ``on_spawn`` is called with the pid and command right after the start (to record a pid file).

    Raises
    ------
    LocalCloudError
        When the port is taken, or the dashboard exits or does not answer within ``timeout`` seconds (it is
        stopped; the message includes the end of its log).
    """
    if procs.port_in_use(port):
        raise LocalCloudError(f"port {port} is in use by another program, so the dashboard was not started")
    cmd = dashboard_command(port, file_watcher=file_watcher)
    pid = spawn(cmd, log_path, env=dashboard_env(stack_file, state_dir), cwd=defaults.ROOT)
    try:
        if on_spawn is not None:
            on_spawn(pid, cmd)
        wait_for(lambda: not pid_alive(pid) or dashboard_healthy(port), timeout, 0.3)
    except BaseException:
        stop_group(pid, 5)
        raise
    if not dashboard_healthy(port):
        stop_group(pid, 5)
        raise LocalCloudError(f"the dashboard did not come up; the end of {log_path}:\n{tail(log_path)}")
    return DashboardHandle(pid, port, f"http://localhost:{port}", log_path, tuple(cmd))


def run_dashboard(port: int = defaults.DASHBOARD_PORT) -> None:
    """Replace this process with the dashboard in the foreground (``make dashboard``); never returns."""
    cmd = dashboard_command(port)
    os.chdir(defaults.ROOT)
    os.execv(cmd[0], cmd)


# -- applying the local stack --------------------------------------------------------------------------------------


#: The variables ``make local-up`` applied, in the local root where every Terraform command there loads them.
LOCAL_UP_TFVARS = "local-up.auto.tfvars.json"
#: Folder of an isolated stack's Terraform state directory that holds its private copy of the local root
#: (``ops.local.Paths.apply_root``), so its tflocal runs never queue behind another stack's.
PRIVATE_ROOT_DIR = "root"


def local_up_variables(region: str = defaults.DEFAULT_REGION, hot_reload_dir: Path | None = None) -> dict[str, Any]:
    """Return the Terraform variables a local ``up`` applies: the region, and ``hot_reload_dir`` when given."""
    variables: dict[str, Any] = {"region": region}
    if hot_reload_dir is not None:
        variables["hot_reload_dir"] = str(hot_reload_dir)
    return variables


def write_local_up_tfvars(root: Path, variables: dict[str, Any]) -> None:
    """Write ``variables`` to :data:`LOCAL_UP_TFVARS` in the local root ``root`` (loaded by every command there)."""
    (root / LOCAL_UP_TFVARS).write_text(json.dumps(variables, indent=2) + "\n")


def apply_local_stack(
    endpoint: str,
    tf_state_dir: Path | None,
    *,
    region: str = defaults.DEFAULT_REGION,
    on_output: Callable[[str], None] | None = None,
    root: Path = terraform.LOCAL_ROOT,
    hot_reload_dir: Path | None = None,
) -> dict[str, Any]:
    """Apply the local root ``root`` to the local cloud at ``endpoint`` (tflocal) and return the outputs.

    With ``tf_state_dir`` the stack's Terraform data and state stay in that directory (tests, bench). With ``None``
    they are the root's own (``.terraform/``, ``terraform.tfstate``) and the variables go to
    :data:`LOCAL_UP_TFVARS` in the root, which Terraform loads by itself: ``tflocal plan`` run there by hand plans
    against exactly this stack and these variables.

    With ``hot_reload_dir`` (an absolute directory, the repository's ``lambda/``) the function's code is that
    directory, run live (Terraform variable ``hot_reload_dir``); without it, the built zip.

    Raises
    ------
    ops.terraform.TerraformError
        When Terraform fails or nothing answers at ``endpoint``.
    """
    variables = local_up_variables(region, hot_reload_dir)
    if tf_state_dir is None:
        write_local_up_tfvars(root, variables)
    return terraform.apply(
        root,
        variables if tf_state_dir is not None else None,
        local=True,
        endpoint=endpoint,
        state_dir=tf_state_dir,
        region=region,
        on_output=on_output,
    )


def destroy_local_stack(endpoint: str, tf_state_dir: Path, *, region: str = defaults.DEFAULT_REGION) -> None:
    """Destroy what :func:`apply_local_stack` made (same root, state directory and region).

    The stack's private copy of the root (:data:`PRIVATE_ROOT_DIR` in ``tf_state_dir``) when it has one, else
    ``terraform/envs/local``.
    """
    private = Path(tf_state_dir) / PRIVATE_ROOT_DIR / terraform.LOCAL_ROOT.relative_to(terraform.REPO_ROOT)
    root = private if private.is_dir() else terraform.LOCAL_ROOT
    terraform.destroy(root, {"region": region}, local=True, endpoint=endpoint, state_dir=tf_state_dir, region=region)


# -- python -m ops, in a process group of its own ----------------------------------------------------------------


def run_ops(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ops <args>`` in the project root and return the finished process (output captured).

    The command runs in a process group of its own. When it does not finish within ``timeout`` seconds, or the
    wait is interrupted (Ctrl-C), the whole group (terraform and its provider included) is stopped before
    ``subprocess.TimeoutExpired`` (with the output so far) or the interruption is raised.
    """
    cmd = [sys.executable, "-m", "ops", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=defaults.ROOT,
        env=dict(os.environ if env is None else env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as exc:
        stop_group(proc.pid, timeout=10)
        stdout, stderr = proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise subprocess.TimeoutExpired(cmd, timeout, output=stdout, stderr=stderr) from None
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def stack_up(
    state_dir: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    timeout: float = 1800,
    keep_log: Path | None = None,
    backend: str = "embedded",
) -> tuple[subprocess.CompletedProcess[str], stackfile.StackState | None]:
    """Bring a whole stack up in ``state_dir`` on ``port`` without a dashboard (``python -m ops up``).

    ``backend`` is ``embedded`` (default) or ``ministack``: a backend whose server ``up`` starts as a process.

    Returns the finished ``up`` and the stack file it wrote (``None`` when it failed). Whatever ``up`` got to start
    is stopped again (:func:`stack_down`, keeping the server log's end in ``keep_log``) when it fails, times out or
    is interrupted.
    """
    args = ["--state-dir", str(state_dir), "up", "--backend", backend, "--port", str(port), "--no-dashboard"]
    ready = False
    try:
        up = run_ops(args, env, timeout)
        current = stackfile.load(state_dir) if up.returncode == 0 else None
        ready = current is not None
        return up, current
    finally:
        if not ready:
            stack_down(state_dir, env, keep_log=keep_log)


def stack_down(
    state_dir: Path, env: Mapping[str, str] | None = None, timeout: float = 120, keep_log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ops down`` on ``state_dir``; stop the recorded server (or MiniStack) directly if that fails.

    ``down`` removes the server's log: with ``keep_log`` its end is copied there first. Returns the finished ``down``
    (a stand-in with return code 1 and the reason when it timed out).
    """
    if keep_log is not None:
        with contextlib.suppress(OSError):
            logs = [state_dir / name for name in ("server.log", "ministack.log") if (state_dir / name).is_file()]
            keep_log.write_text("".join(tail(log, 2000) + "\n" for log in logs))
    recorded = procs.PidFile(state_dir / "server.pid").running_pid(SERVER_MARKER)
    recorded = recorded or procs.PidFile(state_dir / "ministack.pid").running_pid(MINISTACK_MARKER)
    try:
        down = run_ops(["--state-dir", str(state_dir), "down"], env, timeout)
    except subprocess.TimeoutExpired as exc:
        down = subprocess.CompletedProcess(exc.cmd, 1, exc.output or "", f"timed out after {exc.timeout} s")
    if recorded is not None and pid_alive(recorded):
        stop_group(recorded)
    return down
