"""Start and stop the local stack's processes: the local cloud, MiniStack, LocalStack, the dashboard, ``python -m ops``.

The primitives :mod:`ops.local` (``make local-up``/``local-down``), the tests' fixtures and the bench start their
processes with, so they all get the same command line, the same pid file and log (names from :mod:`ops.statedir`),
the same health wait and the same clean-up on failure. Nothing here decides what to start: that is :mod:`ops.local`.

:func:`start_localcloud`
    ``python -m localcloud.server`` detached on a port, its pid file written at once, waited for until its health
    check answers; :func:`restored_from` and :func:`snapshot_localcloud` talk to its snapshot endpoints.
:func:`start_ministack`
    ``python -m localcloud.ministack`` (MiniStack behind the local cloud's guard, on the interpreter of its own venv
    ``.venv-ministack``) detached on a port, its pid file written at once, waited for until its health check answers.
:func:`start_localstack`, :func:`stop_localstack`
    LocalStack from ``docker-compose.yml`` (``docker compose up -d --wait`` / ``down -v``).
:func:`dashboard_command`, :func:`start_dashboard`, :func:`run_dashboard`
    ``streamlit run dashboard/app.py`` bound to 127.0.0.1: detached with a health wait (``make local-up``, the
    browser tests) or in the foreground (``make dashboard``).
:func:`stop_process`
    Stops a started process with its process group and waits for its port.
:func:`run_ops`, :func:`stack_up`, :func:`stack_down`
    ``python -m ops up|down`` (what ``make local-up``/``local-down`` run) in a process group of its own that is
    stopped on timeout or interrupt: how the tests and the bench bring a whole stack up and down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud.server import HEALTH_PATH, SNAPSHOT_PATH
from ops import defaults, procs, stackfile
from ops.procs import LocalCloudError, get_json, pid_alive, spawn, stop_group, tail, wait_for
from ops.stack import Stack
from ops.statedir import StateFiles

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
    snapshot_file: Path | None = None,
    restore: Path | None = None,
    persist_file: Path | None = None,
    iam_args: Sequence[str] = (),
) -> ServerHandle:
    """Start ``python -m localcloud.server`` detached on ``host:port`` and wait until its health check answers.

    Its pid file, log and Lambda cache are those of ``state_dir`` (:class:`ops.statedir.StateFiles`); the pid file
    is written right after the start, before the wait, so ``python -m ops down`` finds the server even when the
    caller is killed while waiting. ``snapshot_file`` is where :func:`snapshot_localcloud` makes it save its state;
    ``restore`` a file it starts from (:func:`restored_from`: one it cannot load leaves it empty), ``persist_file``
    where it saves its data when asked (persistence). With ``exit_with`` it stops once that process is gone (tests).
    ``iam_args`` are its IAM flags (:meth:`ops.iammode.IamSettings.server_args`; none: its own default, from env).

    Raises
    ------
    LocalCloudError
        When the port is taken, or the server exits or does not answer within ``timeout`` seconds (it is stopped;
        the message includes the end of its log).
    """
    _check_port_free(port, host)
    files = StateFiles(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", SERVER_MARKER, "--host", host, "--port", str(port)]
    cmd += ["--cache-dir", str(files.lambda_cache)]
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
    if persist_file is not None:
        cmd += ["--persist-file", str(persist_file)]
    cmd += list(iam_args)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    pid = _start(
        cmd,
        child_env,
        files.server_log,
        files.server_pid,
        port,
        lambda: localcloud_health(port, host) is not None,
        timeout,
        0.2,
        f"the local cloud server did not start on {host}:{port}",
    )
    return ServerHandle(pid, host, port, files.server_log)


def _check_port_free(port: int, host: str) -> None:
    """Raise :class:`LocalCloudError` when something already listens on ``host:port`` (a local cloud's port)."""
    if procs.port_in_use(port, host):
        raise LocalCloudError(
            f"port {port} on {host} is already in use by another program; stop it, or choose another port "
            f"(python -m ops up --port N)"
        )


def _start(
    cmd: list[str],
    env: dict[str, str],
    log_path: Path,
    pid_file: procs.PidFile | None,
    port: int,
    healthy: Callable[[], bool],
    timeout: float,
    interval: float,
    failed: str,
) -> int:
    """Start ``cmd`` detached in the project root, record it in ``pid_file``, wait until ``healthy``; return its pid.

    When it exits, does not become healthy within ``timeout`` seconds or the wait is interrupted, the process group
    is stopped (and its pid file removed) before :class:`LocalCloudError` (``failed`` and the end of ``log_path``) or
    the interruption is raised.
    """
    pid = spawn(cmd, log_path, env=env, cwd=defaults.ROOT)
    try:
        if pid_file is not None:
            pid_file.write(pid, cmd, port=port, log=str(log_path))
        wait_for(lambda: not pid_alive(pid) or healthy(), timeout, interval)
        if not pid_alive(pid) or not healthy():
            raise LocalCloudError(f"{failed}; the end of {log_path}:\n{tail(log_path)}")
    except BaseException:  # also when interrupted (KeyboardInterrupt, a signal turned into an exception)
        if stop_group(pid, 5) and pid_file is not None:
            pid_file.remove()
        raise
    return pid


def restored_from(port: int, host: str = defaults.LOCAL_HOST) -> tuple[str | None, str | None]:
    """Return the snapshot file the embedded cloud on ``host:port`` started from and why a restore failed.

    ``(file, None)`` after a restore, ``(None, reason)`` when the file could not be loaded (the cloud is empty),
    ``(None, None)`` when it was not asked to restore or does not answer.
    """
    info = (localcloud_health(port, host) or {}).get("snapshot") or {}
    return info.get("restored_from"), info.get("restore_error")


def snapshot_localcloud(
    port: int,
    host: str = defaults.LOCAL_HOST,
    timeout: float = 120.0,
    path: str = SNAPSHOT_PATH,
    document: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Make the embedded cloud on ``host:port`` save its snapshot (``path=PERSIST_PATH``: its data); return the summary.

    Raises
    ------
    LocalCloudError
        When the server refuses or fails (the message is the server's reason).
    """
    return procs.call_json("POST", f"http://{host}:{port}{path}", document, timeout=timeout, what="save its state")


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
) -> ServerHandle:
    """Start ``python -m localcloud.ministack`` detached on ``host:port`` and wait until its health check answers.

    It runs on MiniStack's venv (:func:`ministack_python`) in the project root (for the ``localcloud`` package); its
    pid file, log and temporary files (code of the Lambda functions, its own pid file) are those of ``state_dir``
    (:class:`ops.statedir.StateFiles`). ``exit_with`` works as in :func:`start_localcloud`; without it,
    ``LOCALCLOUD_EXIT_WITH_PID`` in the environment is honoured.

    Raises
    ------
    LocalCloudError
        When the venv is missing, the port is taken, or MiniStack exits or does not answer within ``timeout``
        seconds (it is stopped; the message includes the end of its log).
    """
    python = ministack_python()
    _check_port_free(port, host)
    files = StateFiles(state_dir)
    files.ministack_tmp.mkdir(parents=True, exist_ok=True)
    cmd = [str(python), "-m", MINISTACK_MARKER, "--host", host, "--port", str(port), "--region", region]
    child_env = dict(os.environ if env is None else env)
    exit_with = exit_with or (
        int(child_env["LOCALCLOUD_EXIT_WITH_PID"]) if child_env.get("LOCALCLOUD_EXIT_WITH_PID") else None
    )
    if exit_with is not None:
        cmd += ["--exit-with", str(exit_with)]
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    child_env["TMPDIR"] = str(files.ministack_tmp)
    # The project's own venv must not leak into MiniStack's interpreter or its Lambda workers.
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        child_env.pop(name, None)
    pid = _start(
        cmd,
        child_env,
        files.ministack_log,
        files.ministack_pid,
        port,
        lambda: ministack_health(port, host) is not None,
        timeout,
        0.3,
        f"MiniStack did not start on {host}:{port}",
    )
    return ServerHandle(pid, host, port, files.ministack_log)


# -- the dashboard -------------------------------------------------------------------------------------------------

STREAMLIT_MARKER = "streamlit"
DASHBOARD_APP = defaults.ROOT / "dashboard" / "app.py"


def dashboard_command(port: int = defaults.DASHBOARD_PORT, *, file_watcher: str | None = None) -> list[str]:
    """Return the command line that serves the dashboard on ``127.0.0.1:port`` (headless, no usage statistics).

    Each of these flags keeps Streamlit's server on this machine: the set address stops its external-IP lookup,
    headless its email prompt, and ``gatherUsageStats`` the browser's metrics (see docs/dashboard.md, "Offline").
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
    pid_file: procs.PidFile | None = None,
    stack_file: Path | None = None,
    state_dir: Path | None = None,
    file_watcher: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> DashboardHandle:
    """Start the dashboard detached on ``127.0.0.1:port`` and wait until Streamlit's health check answers.

    Its output goes to ``log_path``; ``pid_file`` (``make local-up``: the state directory's) is written right after
    the start. ``stack_file`` and ``state_dir`` tell the dashboard where its stack is (:func:`dashboard_env`);
    ``extra_env`` adds variables on top (the browser tests load their network audit hook with it).

    Raises
    ------
    LocalCloudError
        When the port is taken, or the dashboard exits or does not answer within ``timeout`` seconds (it is
        stopped and its pid file removed; the message includes the end of its log).
    """
    if procs.port_in_use(port):
        raise LocalCloudError(f"port {port} is in use by another program, so the dashboard was not started")
    cmd = dashboard_command(port, file_watcher=file_watcher)
    env = dashboard_env(stack_file, state_dir) | dict(extra_env or {})
    pid = _start(
        cmd,
        env,
        log_path,
        pid_file,
        port,
        lambda: dashboard_healthy(port),
        timeout,
        0.3,
        "the dashboard did not come up",
    )
    return DashboardHandle(pid, port, f"http://localhost:{port}", log_path, tuple(cmd))


def run_dashboard(port: int = defaults.DASHBOARD_PORT) -> None:
    """Replace this process with the dashboard in the foreground (``make dashboard``); never returns."""
    cmd = dashboard_command(port)
    os.chdir(defaults.ROOT)
    os.execv(cmd[0], cmd)


# -- LocalStack (docker compose) --------------------------------------------------------------------------------

LOCALSTACK_HEALTH = "/_localstack/health"
#: Compose project name, passed with ``-p`` (Compose v1 refuses a top-level ``name:`` in the file).
COMPOSE_PROJECT = "image-pipeline"


def docker_available(timeout: float = 8.0) -> bool:
    """Return True when the ``docker`` CLI exists and a Docker engine answers ``docker info`` within ``timeout``."""
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def compose_command() -> list[str]:
    """Return the Docker Compose command (``docker compose`` or ``docker-compose``).

    Raises
    ------
    LocalCloudError
        When neither is installed.
    """
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise LocalCloudError(
        "Docker Compose is not installed (neither `docker compose` nor `docker-compose` works); install the Docker "
        "Compose plugin, or use the embedded local cloud: make local-up BACKEND=embedded"
    )


def _compose(
    compose_file: Path, args: list[str], port: int, timeout: float = 600, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``docker compose -p image-pipeline -f compose_file <args>`` with ``LOCALSTACK_PORT`` and ``env`` set."""
    env = {**os.environ, **(env or {}), "LOCALSTACK_PORT": str(port)}
    return subprocess.run(
        [*compose_command(), "-p", COMPOSE_PROJECT, "-f", str(compose_file), *args],
        cwd=compose_file.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def localstack_health(port: int, host: str = defaults.LOCAL_HOST) -> dict[str, Any] | None:
    """Return LocalStack's health document on ``host:port``, or ``None`` if nothing answers there."""
    return get_json(f"http://{host}:{port}{LOCALSTACK_HEALTH}")


def start_localstack(compose_file: Path, port: int, env: Mapping[str, str] | None = None) -> str:
    """Start LocalStack from ``compose_file`` on ``port`` (``docker compose up -d --wait``); return its endpoint.

    Waits up to 120 s for its health check after Compose returned.

    Raises
    ------
    LocalCloudError
        When no Docker engine answers, Compose fails (an auth-token failure says how to fix it) or LocalStack does
        not answer.
    """
    if not docker_available():
        raise LocalCloudError(
            "the localstack backend needs a running Docker engine (`docker info` fails); start Docker, or use the "
            "embedded local cloud: make local-up BACKEND=embedded"
        )
    result = _compose(compose_file, ["up", "-d", "--wait"], port, env=env)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        hint = ""
        if "auth" in detail.lower() or "token" in detail.lower():
            hint = (
                "\nLocalStack images newer than 4.14.0 need LOCALSTACK_AUTH_TOKEN; export it, or keep "
                "LOCALSTACK_VERSION=4.14.0 (the default)."
            )
        raise LocalCloudError(f"`docker compose up` failed:\n{detail}{hint}")
    if not wait_for(lambda: localstack_health(port) is not None, 120, 1.0):
        raise LocalCloudError(
            f"LocalStack did not answer http://127.0.0.1:{port}{LOCALSTACK_HEALTH} within 120 s; "
            f"see `docker compose -p {COMPOSE_PROJECT} logs localstack`"
        )
    return f"http://127.0.0.1:{port}"


def stop_localstack(compose_file: Path, port: int, keep_volumes: bool = False) -> str | None:
    """Stop LocalStack, removing its volumes unless ``keep_volumes`` (persistence); return what went wrong, or None."""
    args = ["down"] if keep_volumes else ["down", "-v"]
    result = _compose(compose_file, args, port)
    if result.returncode != 0:
        return f"`docker compose {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()[-500:]}"
    return None


# -- stopping --------------------------------------------------------------------------------------------------------


def stop_process(pid: int, port: int, what: str, timeout: float = 10.0) -> list[str]:
    """Stop process ``pid`` with its process group (Lambda workers, Streamlit's children) and wait for ``port``.

    SIGTERM, up to ``timeout`` seconds, then SIGKILL (:func:`ops.procs.stop_group`); then up to 10 s for ``port`` to
    be free. Returns what went wrong, naming ``what`` (empty: stopped and the port is free).
    """
    problems: list[str] = []
    if not stop_group(pid, timeout):
        problems.append(f"{what} (pid {pid}) did not stop")
    if not wait_for(lambda: not procs.port_in_use(port), 10):
        problems.append(f"port {port} is still in use after stopping {what}")
    return problems


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
) -> tuple[subprocess.CompletedProcess[str], Stack | None]:
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
    files = StateFiles(state_dir)
    if keep_log is not None:
        with contextlib.suppress(OSError):
            keep_log.write_text("".join(tail(log, 2000) + "\n" for log in files.emulator_logs()))
    recorded = files.server_pid.running_pid(SERVER_MARKER) or files.ministack_pid.running_pid(MINISTACK_MARKER)
    try:
        down = run_ops(["--state-dir", str(state_dir), "down"], env, timeout)
    except subprocess.TimeoutExpired as exc:
        down = subprocess.CompletedProcess(exc.cmd, 1, exc.output or "", f"timed out after {exc.timeout} s")
    if recorded is not None and pid_alive(recorded):
        stop_group(recorded)
    return down
