"""Bring the local stack up and down: the work behind ``make local-up``, ``local-down`` and ``local-status``.

``up`` picks a backend (``auto``: LocalStack when a Docker engine answers, else the embedded local cloud;
``ministack``: MiniStack, a LocalStack-compatible emulator, from its own venv), starts it in the background,
applies ``terraform/envs/local`` with tflocal, writes the stack file (:mod:`ops.stackfile`) and starts the
dashboard, each process through :mod:`ops.launch`. Running it again reuses what runs and re-applies (a no-op when
nothing changed). ``down`` stops everything ``up`` started and removes the local state. Everything
lives in the state directory (``.local/`` or ``LOCALCLOUD_STATE_DIR``):

- ``stack.json``: the state file the dashboard reads;
- ``server.pid``/``server.log``, ``lambda-cache/``: the embedded server;
- ``snapshot/``: the embedded stack as it was right after its last apply on a fresh server, with the fingerprint of
  what that apply depended on (:mod:`ops.snapshot`). An ``up`` that starts a fresh embedded server with the same
  fingerprint restores it instead of applying (seconds instead of about a minute). ``down`` keeps it, ``reset``
  removes it;
- ``ministack.pid``/``ministack.log``, ``ministack-tmp/``: MiniStack;
- ``dashboard.pid``/``dashboard.log``: Streamlit.

Terraform's state is where Terraform users look: the project's own stack (state directory ``<root>/.local``) uses
the root module's defaults, ``terraform/envs/local/.terraform/`` and ``terraform/envs/local/terraform.tfstate``,
with ``up``'s variables in ``terraform/envs/local/local-up.auto.tfvars.json`` (loaded by every Terraform command
there), so ``tflocal output``, ``tflocal plan`` and ``tflocal apply`` in that folder see and update the same stack.
Any other state directory (``LOCALCLOUD_STATE_DIR``: the tests and the bench) keeps an isolated Terraform state in
its ``tfstate/``. ``down`` removes the stack's Terraform state with the emulator that held its resources.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops import defaults, launch, procs, stackfile, terraform
from ops import snapshot as snapshots
from ops.procs import LocalCloudError

BACKENDS = ("auto", "embedded", "localstack", "ministack")
#: Backends whose server ``up`` starts as a process of its own (pid file, log in the state directory).
PROCESS_BACKENDS = ("embedded", "ministack")
DEFAULT_PORT = defaults.LOCAL_PORT
DASHBOARD_PORT = defaults.DASHBOARD_PORT
LOCALSTACK_HEALTH = "/_localstack/health"
#: Compose project name, passed with ``-p`` (Compose v1 refuses a top-level ``name:`` in the file).
COMPOSE_PROJECT = "image-pipeline"

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress callback: say nothing."""


@dataclass(frozen=True, slots=True)
class Paths:
    """Files of one local stack inside its state directory."""

    root: Path
    state_dir: Path

    @property
    def server_pid(self) -> procs.PidFile:
        """The embedded server's pid file."""
        return procs.PidFile(self.state_dir / "server.pid")

    @property
    def ministack_pid(self) -> procs.PidFile:
        """MiniStack's pid file."""
        return procs.PidFile(self.state_dir / "ministack.pid")

    @property
    def dashboard_pid(self) -> procs.PidFile:
        """The dashboard's pid file."""
        return procs.PidFile(self.state_dir / "dashboard.pid")

    @property
    def tf_root(self) -> Path:
        """The local Terraform root module of this project."""
        return self.root / terraform.LOCAL_ROOT.relative_to(terraform.REPO_ROOT)

    @property
    def tf_state(self) -> Path | None:
        """Terraform's data directory and state of an isolated stack; ``None`` for the project's own stack.

        ``None`` means the root module's defaults (``.terraform/`` and ``terraform.tfstate`` in :attr:`tf_root`),
        where ``tflocal output``/``plan``/``apply`` run by hand find the stack ``make local-up`` applied.
        """
        if self.state_dir == (self.root / ".local").resolve():
            return None
        return self.state_dir / "tfstate"

    @property
    def tf_state_file(self) -> Path:
        """The Terraform state file of this stack (where Terraform reads and writes it)."""
        if self.tf_state is None:
            return self.tf_root / "terraform.tfstate"
        return self.tf_state / "terraform.tfstate"

    @property
    def snapshot(self) -> snapshots.Snapshot:
        """The embedded stack's snapshot (``snapshot/`` in the state directory)."""
        return snapshots.Snapshot(self.state_dir / snapshots.SNAPSHOT_DIR)

    def apply_root(self) -> Path:
        """Return the root module an apply of this stack runs in: :attr:`tf_root`, or a private copy of it.

        tflocal writes its provider override file into the root for each command, so runs in one root take turns
        (``ops.terraform``'s root lock). The project's own stack applies in :attr:`tf_root`, where users run
        ``tflocal`` by hand. An isolated stack (:attr:`tf_state` set: the tests, the bench) applies from a copy of
        its own in ``tfstate/root/`` (``launch.PRIVATE_ROOT_DIR``): the root's ``*.tf`` files and provider lock
        file are copied, and the folders they reach by relative path (``terraform/modules``, ``build``) are links
        to the project's. Isolated stacks on other ports then apply side by side instead of queueing for the root.
        """
        if self.tf_state is None:
            return self.tf_root
        project = self.tf_state / launch.PRIVATE_ROOT_DIR
        copy = project / self.tf_root.relative_to(self.root)
        copy.mkdir(parents=True, exist_ok=True)
        wanted = {f.name for f in self.tf_root.iterdir() if f.suffix == ".tf" or f.name == ".terraform.lock.hcl"}
        wanted.discard(terraform.TFLOCAL_OVERRIDE_FILE)
        for stale in copy.iterdir():
            if stale.is_file() and stale.name not in wanted and stale.name != terraform.TFLOCAL_OVERRIDE_FILE:
                stale.unlink()
        for name in wanted:
            shutil.copyfile(self.tf_root / name, copy / name)
        for shared in (self.tf_root.parent.parent / "modules", self.build_dir):
            link = project / shared.relative_to(self.root)
            if not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(shared, target_is_directory=True)
        return copy

    def forget_tf_state(self) -> None:
        """Remove the Terraform state of this stack (its resources are gone with the emulator that held them)."""
        if self.tf_state is not None:
            shutil.rmtree(self.tf_state, ignore_errors=True)
            return
        for name in ("terraform.tfstate", "terraform.tfstate.backup", launch.LOCAL_UP_TFVARS):
            (self.tf_root / name).unlink(missing_ok=True)

    @property
    def compose_file(self) -> Path:
        """The LocalStack compose file."""
        return self.root / "docker-compose.yml"

    @property
    def build_dir(self) -> Path:
        """Where ``make build`` writes the artifacts."""
        return self.root / defaults.BUILD_DIR.name

    @property
    def function_dir(self) -> Path:
        """The function's sources (``lambda/``), which hot reload runs live."""
        return self.root / defaults.FUNCTION_SOURCE_DIR.name


def paths(root: Path | None = None, state_dir: Path | None = None) -> Paths:
    """Return the :class:`Paths` of the stack of project ``root`` (default: this checkout)."""
    root = (root or stackfile.PROJECT_ROOT).resolve()
    return Paths(root, (state_dir or stackfile.state_dir(root)).resolve())


@contextlib.contextmanager
def _locked(p: Paths) -> Iterator[None]:
    """Hold an exclusive lock on the state directory, so two ``up``/``down`` runs do not interleave."""
    p.state_dir.mkdir(parents=True, exist_ok=True)
    with open(p.state_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalCloudError(
                f"another `python -m ops` command is working on {p.state_dir}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- backends ------------------------------------------------------------------------------------------------------


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


def resolve_backend(requested: str) -> tuple[str, str]:
    """Return the backend to use for ``requested`` (``auto``, ``embedded``, ``localstack``, ``ministack``) and why.

    Raises
    ------
    LocalCloudError
        For an unknown backend name.
    """
    if requested not in BACKENDS:
        raise LocalCloudError(f"unknown backend {requested!r}: use one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested, f"{requested} (requested)"
    if docker_available():
        return "localstack", "localstack (auto: a Docker engine answers)"
    return "embedded", "embedded (auto: no Docker engine answers `docker info`)"


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


def _compose(p: Paths, args: list[str], port: int, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["LOCALSTACK_PORT"] = str(port)
    return subprocess.run(
        [*compose_command(), "-p", COMPOSE_PROJECT, "-f", str(p.compose_file), *args],
        cwd=p.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _start_localstack(p: Paths, port: int, say: Say) -> str:
    if not docker_available():
        raise LocalCloudError(
            "the localstack backend needs a running Docker engine (`docker info` fails); start Docker, or use the "
            "embedded local cloud: make local-up BACKEND=embedded"
        )
    say(f"starting LocalStack with {p.compose_file.name} (docker compose up -d --wait) ...")
    result = _compose(p, ["up", "-d", "--wait"], port)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[-2000:]
        hint = ""
        if "auth" in detail.lower() or "token" in detail.lower():
            hint = (
                "\nLocalStack images newer than 4.14.0 need LOCALSTACK_AUTH_TOKEN; export it, or keep "
                "LOCALSTACK_VERSION=4.14.0 (the default)."
            )
        raise LocalCloudError(f"`docker compose up` failed:\n{detail}{hint}")
    health = f"http://127.0.0.1:{port}{LOCALSTACK_HEALTH}"
    if not procs.wait_for(lambda: procs.get_json(health) is not None, 120, 1.0):
        raise LocalCloudError(
            f"LocalStack did not answer {health} within 120 s; "
            f"see `docker compose -p {COMPOSE_PROJECT} logs localstack`"
        )
    return f"http://127.0.0.1:{port}"


def _stop_server(pid_file: procs.PidFile, marker: str, what: str, say: Say, problems: list[str]) -> bool:
    """Stop the local cloud server ``pid_file`` records (if it runs) and wait for its port to be free.

    ``what`` names it in the messages (``the embedded local cloud``, ``MiniStack``); what went wrong is appended to
    ``problems``. Returns True when a running server was found (and asked to stop).
    """
    recorded = pid_file.read() or {}
    pid = pid_file.running_pid(marker)
    if pid is None:
        return False
    say(f"stopping {what} (pid {pid}) and its Lambda workers ...")
    if not procs.stop_group(pid, timeout=15):
        problems.append(f"{what} (pid {pid}) did not stop")
    port = int(recorded.get("port", DEFAULT_PORT))
    if not procs.wait_for(lambda: not procs.port_in_use(port), 10):
        problems.append(f"port {port} is still in use after stopping {what}")
    return True


def _reuse(
    pid_file: procs.PidFile,
    marker: str,
    health: Callable[[int], dict[str, Any] | None],
    port: int,
    what: str,
    say: Say,
) -> bool:
    """Return True when the emulator recorded in ``pid_file`` runs healthy on ``port`` and can be reused.

    A recorded process on another port is an error (``local-down`` first); one that runs but does not answer is
    stopped, and False tells the caller to start a new one.
    """
    pid = pid_file.running_pid(marker)
    if pid is None:
        return False
    recorded = pid_file.read() or {}
    if recorded.get("port") != port:
        raise LocalCloudError(
            f"{what} already runs on port {recorded.get('port')} (pid {pid}); run `make local-down` first to move it "
            "to another port"
        )
    if health(port) is not None:
        say(f"{what} already running (pid {pid}) on port {port}")
        return True
    procs.stop_group(pid)
    return False


def _start_embedded(p: Paths, port: int, say: Say, restore: Path | None = None) -> tuple[str, bool]:
    """Start or reuse the embedded server; return its endpoint and whether it was started now.

    A server started now can save snapshots (:attr:`Paths.snapshot`) and starts from ``restore`` when given.
    """
    if _reuse(p.server_pid, launch.SERVER_MARKER, launch.localcloud_health, port, "the embedded local cloud", say):
        return f"http://127.0.0.1:{port}", False
    health = launch.localcloud_health(port)
    if health is not None:
        raise LocalCloudError(
            f"another embedded local cloud (pid {health.get('pid')}) already listens on port {port}, started from "
            f"another state directory; stop it (kill {health.get('pid')}) or use another port: "
            f"python -m ops up --port N"
        )
    restoring = " from the snapshot" if restore is not None else ""
    say(f"starting the embedded local cloud (moto + local Lambda executor){restoring} on 127.0.0.1:{port} ...")
    log_path = p.state_dir / "server.log"

    def record(pid: int) -> None:
        # Recorded before the health wait, so `down` finds the server even when this `up` is killed while waiting.
        p.server_pid.write(pid, ["python", "-m", launch.SERVER_MARKER], port=port, log=str(log_path))

    handle = launch.start_localcloud(
        port, p.state_dir, on_spawn=record, snapshot_file=p.snapshot.emulator_file, restore=restore
    )
    return handle.endpoint, True


def _start_ministack(p: Paths, port: int, region: str, say: Say) -> tuple[str, bool]:
    """Start or reuse MiniStack; return its endpoint and whether it was started now."""
    if _reuse(p.ministack_pid, launch.MINISTACK_MARKER, launch.ministack_health, port, "MiniStack", say):
        return f"http://127.0.0.1:{port}", False
    say(f"starting MiniStack (behind the local cloud's guard) on 127.0.0.1:{port} ...")
    log_path = p.state_dir / "ministack.log"

    def record(pid: int) -> None:
        p.ministack_pid.write(pid, ["python", "-m", launch.MINISTACK_MARKER], port=port, log=str(log_path))

    handle = launch.start_ministack(port, p.state_dir, region=region, on_spawn=record)
    return handle.endpoint, True


def _start_dashboard(p: Paths, say: Say, port: int = DASHBOARD_PORT) -> dict[str, Any] | None:
    if not launch.DASHBOARD_APP.is_file():
        return None
    url = f"http://localhost:{port}"
    log_path = p.state_dir / "dashboard.log"
    pid = p.dashboard_pid.running_pid(launch.STREAMLIT_MARKER)
    if pid is not None:
        recorded = (p.dashboard_pid.read() or {}).get("port")
        if recorded == port:
            say(f"dashboard already running (pid {pid}) on {url}")
            return {"pid": pid, "url": url, "log": str(log_path)}
        say(f"moving the dashboard from port {recorded} to {port} ...")
        procs.stop_group(pid)
        p.dashboard_pid.remove()
    if procs.port_in_use(port):
        say(f"warning: port {port} is in use by another program, so the dashboard was not started; free the port "
            "and run `make local-up` again, or run `make dashboard` yourself")  # fmt: skip
        return None
    say(f"starting the dashboard on {url} ...")

    def record(pid: int, cmd: list[str]) -> None:
        p.dashboard_pid.write(pid, cmd, port=port, log=str(log_path))

    try:
        handle = launch.start_dashboard(port, log_path, stack_file=p.state_dir / stackfile.STATE_FILE, on_spawn=record)
    except LocalCloudError as exc:
        say(f"warning: {exc}")
        p.dashboard_pid.remove()
        return None
    return {"pid": handle.pid, "url": handle.url, "log": str(log_path)}


def check_function_dir(p: Paths) -> Path:
    """Return the absolute directory hot reload runs (``lambda/``); raise :class:`LocalCloudError` when unusable."""
    directory = p.function_dir.resolve()
    if not (directory / "index.py").is_file():
        raise LocalCloudError(
            f"hot reload runs the function from {directory}, but it has no index.py; run from a full checkout of the "
            "project, or start without hot reload"
        )
    return directory


def check_artifacts(p: Paths) -> None:
    """Raise :class:`LocalCloudError` naming ``make build`` when a build artifact is missing."""
    missing = [name for name in defaults.ARTIFACTS if not (p.build_dir / name).is_file()]
    if missing:
        raise LocalCloudError(
            f"{', '.join('build/' + m for m in missing)} missing: run `make build` (make local-up runs it for you)"
        )


# -- commands ------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Status:
    """What ``status`` found."""

    state: stackfile.StackState | None
    server_pid: int | None = None
    server_health: dict[str, Any] | None = None
    dashboard_pid: int | None = None
    problems: list[str] = field(default_factory=list)
    #: When the embedded stack's snapshot was saved (``None``: there is none).
    snapshot_saved_at: str | None = None

    @property
    def up(self) -> bool:
        """Return True when a stack is recorded and its backend answers."""
        return self.state is not None and not self.problems


def up(
    backend: str = "auto",
    port: int = DEFAULT_PORT,
    root: Path | None = None,
    state_dir: Path | None = None,
    dashboard: bool = True,
    region: str = defaults.DEFAULT_REGION,
    say: Say = _quiet,
    dashboard_port: int = DASHBOARD_PORT,
    hot_reload: bool = False,
) -> stackfile.StackState:
    """Start the local cloud, apply the stack, write the state file and start the dashboard; return the state.

    Idempotent: a running server or dashboard is reused and the stack re-applied (no changes when nothing changed).
    Embedded backend: an ``up`` that starts a fresh server restores the stack's snapshot instead of applying when
    nothing the apply depends on has changed (:mod:`ops.snapshot`), and saves a snapshot after it applied.
    With ``hot_reload`` the function runs live from the project's ``lambda/`` directory (LocalStack's hot-reload
    convention, on both local backends): a saved change takes effect at the next invocation, with no build and no
    apply. Without it, it runs the built zip; an ``up`` without ``hot_reload`` switches a hot-reload stack back.

    Raises
    ------
    LocalCloudError
        When something the user can fix is in the way (port taken, no build, other backend up, no Docker for
        LocalStack, ...); ``ops.terraform.TerraformError`` when Terraform fails.
    """
    p = paths(root, state_dir)
    with _locked(p):
        existing = _load_state(p)
        chosen, why = resolve_backend(backend)
        if existing is not None and existing.backend != chosen and backend != "auto":
            raise LocalCloudError(
                f"a {existing.backend} stack is up (see {p.state_dir / stackfile.STATE_FILE}); run `make local-down` "
                f"before starting the {chosen} backend"
            )
        if existing is not None and backend == "auto":
            chosen, why = existing.backend, f"{existing.backend} (already up)"
        say(f"backend: {why}")
        check_artifacts(p)
        hot_reload_dir = check_function_dir(p) if hot_reload else None
        terraform_version = terraform.check_terraform()
        variables = launch.local_up_variables(region, hot_reload_dir)

        def current_fingerprint() -> snapshots.Fingerprint:
            return snapshots.fingerprint(
                tf_root=p.tf_root,
                build_dir=p.build_dir,
                variables=variables,
                port=port,
                versions=snapshots.tool_versions(terraform_version),
            )

        fingerprint: snapshots.Fingerprint | None = None
        why_not: str | None = None
        if chosen == "embedded":
            fingerprint = current_fingerprint()
            why_not = p.snapshot.why_not(fingerprint)
            restore = p.snapshot.emulator_file if why_not is None else None
            endpoint, fresh = _start_embedded(p, port, say, restore=restore)
        elif chosen == "ministack":
            endpoint, fresh = _start_ministack(p, port, region, say)
        else:
            endpoint, fresh = _start_localstack(p, port, say), existing is None
        if fresh:
            # A new emulator starts empty: Terraform state from an earlier run describes nothing that exists.
            p.forget_tf_state()
        if hot_reload_dir is not None:
            say(f"hot reload: the function runs live from {hot_reload_dir} (the layer from build/)")

        outputs = _restored_outputs(p, port, variables, say) if chosen == "embedded" and fresh else None
        if outputs is None:
            if chosen == "embedded" and fresh:
                say(f"not restoring the snapshot ({why_not or 'the local cloud could not load it'}): applying")
            say(f"applying terraform/envs/local with tflocal against {endpoint} (the SQS queues take ~25 s each) ...")
            outputs = launch.apply_local_stack(
                endpoint,
                p.tf_state,
                region=region,
                on_output=lambda line: _progress(line, say),
                hot_reload_dir=hot_reload_dir,
                root=p.apply_root(),
            )
            if fingerprint is not None and fresh:
                _save_snapshot(p, port, fingerprint, current_fingerprint(), outputs, say)
        server = None
        if chosen in PROCESS_BACKENDS:
            recorded = (p.server_pid if chosen == "embedded" else p.ministack_pid).read() or {}
            server = {"pid": recorded.get("pid"), "port": port, "log": recorded.get("log")}
        current = stackfile.StackState(
            backend=chosen,
            endpoint=f"http://localhost:{port}",
            region=region,
            outputs=outputs,
            server=server,
            dashboard=None,
            hot_reload_dir=str(hot_reload_dir) if hot_reload_dir is not None else None,
        )
        stackfile.save(current, p.state_dir)
        if dashboard:
            current.dashboard = _start_dashboard(p, say, dashboard_port)
            stackfile.save(current, p.state_dir)
        return current


def _shown(p: Paths, path: Path) -> str:
    """Return ``path`` relative to the project root when it is inside it (``.local/snapshot``), else absolute."""
    try:
        return str(path.relative_to(p.root))
    except ValueError:
        return str(path)


def _restored_outputs(p: Paths, port: int, variables: dict[str, Any], say: Say) -> dict[str, Any] | None:
    """Finish a restore: put the snapshot's Terraform state in place and return its outputs.

    Returns ``None`` when the fresh server on ``port`` did not start from the snapshot (none matched, or it could
    not be loaded): the caller applies.
    """
    restored, error = launch.restored_from(port)
    meta = p.snapshot.meta()
    if restored is None or meta is None:
        if error:
            say(f"warning: the local cloud could not load the snapshot ({error})")
        return None
    p.snapshot.put_tfstate(p.tf_state_file)
    if p.tf_state is None:
        launch.write_local_up_tfvars(p.tf_root, variables)
    say(
        f"restored the stack from {_shown(p, p.snapshot.directory)} (apply skipped: nothing it depends on changed "
        f"since {meta.get('created_at')}; `make local-reset` forgets it)"
    )
    return dict(meta.get("outputs") or {})


def _save_snapshot(
    p: Paths,
    port: int,
    before: snapshots.Fingerprint,
    after: snapshots.Fingerprint,
    outputs: dict[str, Any],
    say: Say,
) -> None:
    """Save the freshly applied embedded stack as the snapshot; a failure is a warning (the next ``up`` applies).

    ``before`` and ``after`` are the fingerprints from before and after the apply. The apply's ``terraform init``
    may write the provider lock file (the first time); anything else that changed meanwhile (a file edited during
    the apply) means the applied stack may match neither, and no snapshot is saved.
    """
    p.snapshot.invalidate()
    moved = [name for name in after.changed(before.parts) if name != "provider_lock"]
    if moved:
        say(f"no snapshot saved: {', '.join(moved)} changed during the apply; the next local-up applies again")
        return
    try:
        summary = launch.snapshot_localcloud(port)
        p.snapshot.commit(after, p.tf_state_file, outputs)
    except (LocalCloudError, OSError) as exc:
        say(f"warning: no snapshot saved ({exc}); the next local-up applies again")
        return
    size = summary.get("bytes", 0) / 1e6
    say(
        f"saved a snapshot of the stack to {_shown(p, p.snapshot.directory)} ({size:.0f} MB in "
        f"{summary.get('seconds', 0):.1f} s): the next local-up "
        "restores it instead of applying while nothing it depends on changes"
    )


def _progress(line: str, say: Say) -> None:
    text = line.strip()
    if text.startswith("Error:") or any(
        key in text for key in ("Creation complete", "Modifications complete", "Destruction complete", "Apply complete")
    ):
        say("  " + text)


def _load_state(p: Paths) -> stackfile.StackState | None:
    try:
        return stackfile.load(p.state_dir)
    except ValueError as exc:
        raise LocalCloudError(str(exc)) from None


def down(root: Path | None = None, state_dir: Path | None = None, say: Say = _quiet) -> bool:
    """Stop what ``up`` started (dashboard, server or MiniStack and their Lambda workers, LocalStack); forget it.

    The embedded stack's snapshot stays (a later ``up`` uses it only while its fingerprint matches); :func:`reset`
    removes it too.

    Returns True when something was stopped. Idempotent: with nothing running it only tidies up.

    Raises
    ------
    LocalCloudError
        When a process does not stop or a port stays taken.
    """
    p = paths(root, state_dir)
    if not p.state_dir.exists():
        say("nothing to stop: no local state")
        return False
    with _locked(p):
        try:
            current = stackfile.load(p.state_dir)
        except ValueError:
            current = None
        stopped = False
        problems: list[str] = []

        dashboard = p.dashboard_pid.read() or {}
        pid = p.dashboard_pid.running_pid(launch.STREAMLIT_MARKER)
        if pid is not None:
            say(f"stopping the dashboard (pid {pid}) ...")
            stopped = True
            if not procs.stop_group(pid):
                problems.append(f"the dashboard (pid {pid}) did not stop")
            elif procs.port_in_use(int(dashboard.get("port", DASHBOARD_PORT))):
                problems.append(f"port {dashboard.get('port', DASHBOARD_PORT)} is still in use after the dashboard")

        stopped |= _stop_server(p.server_pid, launch.SERVER_MARKER, "the embedded local cloud", say, problems)
        stopped |= _stop_server(p.ministack_pid, launch.MINISTACK_MARKER, "MiniStack", say, problems)

        if current is not None and current.backend == "localstack":
            say("stopping LocalStack (docker compose down -v) ...")
            stopped = True
            port = int(current.endpoint.rsplit(":", 1)[-1]) if current.endpoint else DEFAULT_PORT
            result = _compose(p, ["down", "-v"], port)
            if result.returncode != 0:
                problems.append(f"`docker compose down -v` failed: {(result.stderr or result.stdout).strip()[-500:]}")

        if problems:
            raise LocalCloudError("; ".join(problems) + f". The state in {p.state_dir} was kept; fix and run again")

        for name in (stackfile.STATE_FILE, "server.pid", "dashboard.pid", "server.log", "dashboard.log"):
            (p.state_dir / name).unlink(missing_ok=True)
        for name in ("ministack.pid", "ministack.log"):
            (p.state_dir / name).unlink(missing_ok=True)
        for name in ("lambda-cache", "ministack-tmp"):
            shutil.rmtree(p.state_dir / name, ignore_errors=True)
        p.forget_tf_state()
        say("local cloud stopped; local state removed" if stopped else "nothing was running; local state removed")
        if p.snapshot.meta() is not None:
            say(
                f"kept the snapshot in {_shown(p, p.snapshot.directory)} (the next local-up restores it while nothing "
                "changed; `make local-reset` removes it)"
            )
        return stopped


def reset(root: Path | None = None, state_dir: Path | None = None, say: Say = _quiet) -> bool:
    """Do what :func:`down` does, then remove the snapshot too, so the next ``up`` applies from scratch.

    Returns True when a snapshot was removed.

    Raises
    ------
    LocalCloudError
        As :func:`down`.
    """
    p = paths(root, state_dir)
    if not p.state_dir.exists():
        say("nothing to stop and no snapshot: no local state")
        return False
    with _locked(p):
        removed = p.snapshot.discard()  # first, so that `down` has no snapshot to keep
    down(root, state_dir, say=say)
    say(f"removed the snapshot {_shown(p, p.snapshot.directory)}" if removed else "no snapshot to remove")
    return removed


def status(root: Path | None = None, state_dir: Path | None = None) -> Status:
    """Return what runs: the recorded stack, the server's and dashboard's processes, and problems found."""
    p = paths(root, state_dir)
    try:
        current = stackfile.load(p.state_dir)
    except ValueError as exc:
        return Status(None, problems=[str(exc)])
    result = Status(current, snapshot_saved_at=(p.snapshot.meta() or {}).get("created_at"))
    result.server_pid = p.server_pid.running_pid(launch.SERVER_MARKER)
    if current is not None and current.backend == "ministack":
        result.server_pid = p.ministack_pid.running_pid(launch.MINISTACK_MARKER)
    result.dashboard_pid = p.dashboard_pid.running_pid(launch.STREAMLIT_MARKER)
    if current is None:
        return result
    port = int(current.endpoint.rsplit(":", 1)[-1])
    if current.backend == "embedded":
        result.server_health = launch.localcloud_health(port)
        if result.server_pid is None or result.server_health is None:
            result.problems.append(
                "the embedded server is not running (the stack vanished with it); run `make local-down` and "
                "`make local-up`"
            )
    elif current.backend == "ministack":
        result.server_health = launch.ministack_health(port)
        if result.server_pid is None or result.server_health is None:
            result.problems.append(
                "MiniStack is not running (the stack vanished with it); run `make local-down` and "
                "`make local-up BACKEND=ministack`"
            )
    else:
        result.server_health = procs.get_json(f"http://127.0.0.1:{port}{LOCALSTACK_HEALTH}")
        if result.server_health is None:
            result.problems.append("LocalStack does not answer; run `make local-down` and `make local-up`")
    if current.dashboard and result.dashboard_pid is None:
        result.problems.append("the dashboard is not running; run `make local-up` again or `make dashboard`")
    return result
