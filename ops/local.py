"""Decide what the local stack runs: ``up``, ``down``, ``reset``, ``status`` (``make local-up``, ``local-down``, ...).

``up`` picks a backend (``auto``: LocalStack when a Docker engine answers, else the embedded local cloud;
``ministack``: MiniStack, a LocalStack-compatible emulator, from its own venv), reuses or starts it, restores the
embedded stack's snapshot or applies ``terraform/envs/local`` with tflocal (:mod:`ops.localroot`), writes the stack
file (:mod:`ops.stackfile`) and starts the dashboard. Running it again reuses what runs and re-applies (a no-op when
nothing changed). ``down`` stops everything ``up`` started and removes the local state; ``reset`` removes the
snapshot too; ``status`` says what runs.

This module decides (which backend, warm or cold, what to start or stop, in what order) and says so; the processes
start and stop through :mod:`ops.launch`, and every file name comes from :mod:`ops.statedir`.

The snapshot: the embedded stack as it was right after its last apply on a fresh server, with the fingerprint of what
that apply depended on (:mod:`ops.snapshot`). An ``up`` that starts a fresh embedded server with the same fingerprint
restores it instead of applying (seconds instead of about a minute). ``down`` keeps it, ``reset`` removes it.

Persistence (``up(keep_data=True)``, ``make local-up PERSIST=1``): ``down`` saves the data too (the embedded cloud
drains and saves itself, MiniStack and LocalStack use their own persistence) with Terraform's state
(:mod:`ops.persist`), and the next ``up`` with persistence starts from it, applying on top only when something the
apply depends on changed. ``reset`` forgets it; an ``up`` without persistence leaves it unused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ops import debugging, defaults, iammode, launch, localroot, persist, procs, stackfile, terraform
from ops import snapshot as snapshots
from ops.datadir import PERSIST_ENV, describe
from ops.procs import LocalCloudError
from ops.stack import Stack
from ops.statedir import Paths, locked, paths

BACKENDS = ("auto", "embedded", "localstack", "ministack")
#: Backends whose server ``up`` starts as a process of its own (pid file, log in the state directory).
PROCESS_BACKENDS = ("embedded", "ministack")
DEFAULT_PORT = defaults.LOCAL_PORT
DASHBOARD_PORT = defaults.DASHBOARD_PORT
_IAM = iammode.IamSettings()

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress callback: say nothing."""


@dataclass(slots=True)
class Status:
    """What ``status`` found."""

    state: Stack | None
    server_pid: int | None = None
    server_health: dict[str, Any] | None = None
    dashboard_pid: int | None = None
    problems: list[str] = field(default_factory=list)
    #: When the embedded stack's snapshot was saved (``None``: there is none).
    snapshot_saved_at: str | None = None
    #: Persistence: ``on`` (this stack keeps its data), ``stored`` (what the last ``down`` saved), ``bytes``, ``meta``.
    persistence: dict[str, Any] = field(default_factory=dict)

    @property
    def up(self) -> bool:
        """Return True when a stack is recorded and its backend answers."""
        return self.state is not None and not self.problems


# -- up ------------------------------------------------------------------------------------------------------------


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
    keep_data: bool = False,
    debug_port: int | None = None,
    iam: iammode.IamSettings | None = None,
) -> Stack:
    """Start the local cloud, apply the stack, write the state file and start the dashboard; return the state.

    Idempotent: a running server or dashboard is reused and the stack re-applied (no changes when nothing changed).
    Embedded backend: an ``up`` that starts a fresh server restores the stack's snapshot instead of applying when
    nothing the apply depends on has changed (:mod:`ops.snapshot`), and saves a snapshot after it applied.
    With ``hot_reload`` the function runs live from the project's ``lambda/`` directory (LocalStack's hot-reload
    convention, on both local backends): a saved change takes effect at the next invocation, with no build and no
    apply. Without it, it runs the built zip; an ``up`` without ``hot_reload`` switches a hot-reload stack back.
    With ``keep_data`` (persistence) the data ``down`` saved comes back (:mod:`ops.persist`), and the next ``down``
    saves it again.
    With ``debug_port`` (embedded only) the function's worker listens for a debugger on that port of 127.0.0.1
    (:mod:`ops.debugging`); an ``up`` without it switches debugging off.
    ``iam`` is the IAM mode (:mod:`ops.iammode`; default: ``ENFORCE_IAM``/``IAM_SOFT_MODE`` from the environment,
    checked before anything starts); a running embedded cloud keeps the mode it was started with.

    Raises
    ------
    LocalCloudError
        When something the user can fix is in the way (port taken, no build, other backend up, no Docker for
        LocalStack, ...); ``ops.terraform.TerraformError`` when Terraform fails.
    """
    iam = iammode.settings() if iam is None else iam
    p = paths(root, state_dir)
    with locked(p):
        existing = _load_state(p)
        if debug_port is not None and backend == "auto" and existing is None:
            backend = "embedded"  # the one backend that runs the function under a debugger
        chosen = _choose_backend(p, backend, existing, say)
        if debug_port is not None:
            debugging.check_backend(chosen)
        iammode.announce(chosen, iam, say)
        check_artifacts(p)
        hot_reload_dir = check_function_dir(p) if hot_reload else None
        terraform_version = terraform.check_terraform()
        variables = localroot.up_variables(region, hot_reload_dir)

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
        keep_data = persist.decide(p, keep_data, existing, say)
        data = p.persisted.meta(chosen) if keep_data else None
        if chosen == "embedded":
            fingerprint = current_fingerprint()
            why_not = p.snapshot.why_not(fingerprint)
            restore = p.snapshot.emulator_file if why_not is None else None
            restore = p.persisted.emulator_file if data is not None else restore
            endpoint, fresh = _start_embedded(p, port, say, restore=restore, keep_data=keep_data, iam=iam)
        elif chosen == "ministack":
            endpoint, fresh = _start_ministack(p, port, region, say, keep_data)
        else:
            say(f"starting LocalStack with {p.compose_file.name} (docker compose up -d --wait) ...")
            env = iam.localstack_env() | ({PERSIST_ENV: "1"} if keep_data else {})
            endpoint, fresh = launch.start_localstack(p.compose_file, port, env=env), existing is None
        if fresh:
            # A new emulator starts empty: Terraform state from an earlier run describes nothing that exists.
            localroot.forget_state(p)
        if hot_reload_dir is not None:
            say(f"hot reload: the function runs live from {hot_reload_dir} (the layer from build/)")

        outputs, loaded = None, False
        if fresh and data is not None:
            outputs, loaded = persist.restore(p, chosen, port, variables, data, current_fingerprint, say)
        elif chosen == "embedded" and fresh:
            outputs = _restored_outputs(p, port, variables, say)
        if outputs is None:
            if chosen == "embedded" and fresh and not loaded:
                say(f"not restoring the snapshot ({why_not or 'the local cloud could not load it'}): applying")
            say(f"applying terraform/envs/local with tflocal against {endpoint} (the SQS queues take ~25 s each) ...")
            outputs = localroot.apply(
                p, endpoint, variables, region=region, on_output=lambda line: _progress(line, say)
            )
            if fingerprint is not None and fresh and not loaded:  # a cloud restored with data is no snapshot
                _save_snapshot(p, port, fingerprint, current_fingerprint(), outputs, say)
        if keep_data:
            p.persisted.begin(chosen, current_fingerprint().parts, stackfile.plain_outputs(outputs))

        if chosen == "embedded":
            _debugger(port, outputs, region, debug_port, say)

        current = Stack(
            target="local",
            backend=chosen,
            region=region,
            endpoint=f"http://localhost:{port}",
            outputs=stackfile.plain_outputs(outputs),
            source=str(p.state_dir / stackfile.STATE_FILE),
            stack_file=str(p.state_dir / stackfile.STATE_FILE),
            hot_reload_dir=str(hot_reload_dir) if hot_reload_dir is not None else None,
            server=_server_record(p, chosen, port),
        )
        stackfile.save(current, p.state_dir)
        if dashboard:
            current = replace(current, dashboard=_start_dashboard(p, say, dashboard_port))
            stackfile.save(current, p.state_dir)
        return current


def resolve_backend(requested: str) -> tuple[str, str]:
    """Return the backend to use for ``requested`` (``auto``, ``embedded``, ``localstack``, ``ministack``) and why.

    ``auto`` is LocalStack when a Docker engine answers (:func:`ops.launch.docker_available`), else embedded.

    Raises
    ------
    LocalCloudError
        For an unknown backend name.
    """
    if requested not in BACKENDS:
        raise LocalCloudError(f"unknown backend {requested!r}: use one of {', '.join(BACKENDS)}")
    if requested != "auto":
        return requested, f"{requested} (requested)"
    if launch.docker_available():
        return "localstack", "localstack (auto: a Docker engine answers)"
    return "embedded", "embedded (auto: no Docker engine answers `docker info`)"


def _choose_backend(p: Paths, requested: str, existing: Stack | None, say: Say) -> str:
    """Return the backend ``up`` runs: ``requested`` (resolved), or for ``auto`` the one already up; say why.

    Raises :class:`LocalCloudError` when another backend than the one requested is up.
    """
    chosen, why = resolve_backend(requested)
    if existing is not None and existing.backend != chosen and requested != "auto":
        raise LocalCloudError(
            f"a {existing.backend} stack is up (see {p.stack_file}); run `make local-down` before starting the "
            f"{chosen} backend"
        )
    if existing is not None and requested == "auto":
        chosen, why = existing.backend, f"{existing.backend} (already up)"
    say(f"backend: {why}")
    return chosen


def check_artifacts(p: Paths) -> None:
    """Raise :class:`LocalCloudError` naming ``make build`` when a build artifact is missing."""
    missing = [name for name in defaults.ARTIFACTS if not (p.build_dir / name).is_file()]
    if missing:
        raise LocalCloudError(
            f"{', '.join('build/' + m for m in missing)} missing: run `make build` (make local-up runs it for you)"
        )


def check_function_dir(p: Paths) -> Path:
    """Return the absolute directory hot reload runs (``lambda/``); raise :class:`LocalCloudError` when unusable."""
    directory = p.function_dir.resolve()
    if not (directory / "index.py").is_file():
        raise LocalCloudError(
            f"hot reload runs the function from {directory}, but it has no index.py; run from a full checkout of the "
            "project, or start without hot reload"
        )
    return directory


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


def _start_embedded(
    p: Paths, port: int, say: Say, restore: Path | None = None, keep_data: bool = False, iam: iammode.IamSettings = _IAM
) -> tuple[str, bool]:
    """Reuse or start the embedded server; return its endpoint and whether it was started now.

    A server started now can save snapshots (:attr:`Paths.snapshot`), starts from ``restore`` when given, with
    ``keep_data`` can save its data (:attr:`Paths.persisted`), and judges calls as ``iam`` says; a reused one keeps
    its IAM mode (:func:`ops.iammode.check_running`).
    """
    if _reuse(p.server_pid, launch.SERVER_MARKER, launch.localcloud_health, port, "the embedded local cloud", say):
        iammode.check_running((launch.localcloud_health(port) or {}).get("iam"), iam, say)
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
    persist_file = p.persisted.emulator_file if keep_data else None
    handle = launch.start_localcloud(
        port,
        p.state_dir,
        snapshot_file=p.snapshot.emulator_file,
        restore=restore,
        persist_file=persist_file,
        iam_args=iam.server_args(),
    )
    return handle.endpoint, True


def _start_ministack(p: Paths, port: int, region: str, say: Say, keep_data: bool = False) -> tuple[str, bool]:
    """Reuse or start MiniStack (``keep_data``: with its own persistence on); return its endpoint and if it is new."""
    if _reuse(p.ministack_pid, launch.MINISTACK_MARKER, launch.ministack_health, port, "MiniStack", say):
        return f"http://127.0.0.1:{port}", False
    say(f"starting MiniStack (behind the local cloud's guard) on 127.0.0.1:{port} ...")
    env = {**os.environ, **p.persisted.ministack_env()} if keep_data else None
    handle = launch.start_ministack(port, p.state_dir, region=region, env=env)
    return handle.endpoint, True


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
    localroot.restore(p, variables)
    say(
        f"restored the stack from {p.shown(p.snapshot.directory)} (apply skipped: nothing it depends on changed "
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
        f"saved a snapshot of the stack to {p.shown(p.snapshot.directory)} ({size:.0f} MB in "
        f"{summary.get('seconds', 0):.1f} s): the next local-up "
        "restores it instead of applying while nothing it depends on changes"
    )


def _debugger(port: int, outputs: dict[str, Any], region: str, debug_port: int | None, say: Say) -> None:
    """Switch the embedded cloud's debugger on for the stack's function (``debug_port``), or off when it was on."""
    if debug_port is None:
        if (debugging.state(port) or {}).get("enabled"):
            debugging.disable(port)
            say("debugger: off (the function runs in its usual workers again)")
        return
    function = str(stackfile.plain_outputs(outputs).get(debugging.FUNCTION_OUTPUT) or "")
    say(f"debugger: starting {function}'s worker with debugpy listening on {defaults.LOCAL_HOST}:{debug_port} ...")
    found = debugging.enable(port, function, region, debug_port)
    say(
        f'debugger: {debugging.describe(found)}; attach with .vscode/launch.json ("Attach to the function"): one '
        "worker runs the function, and its timeout stops while it is stopped at a breakpoint"
    )


def _progress(line: str, say: Say) -> None:
    """Pass on the lines of a Terraform apply that show its progress (resources done, errors)."""
    text = line.strip()
    if text.startswith("Error:") or any(
        key in text for key in ("Creation complete", "Modifications complete", "Destruction complete", "Apply complete")
    ):
        say("  " + text)


def _server_record(p: Paths, backend: str, port: int) -> dict[str, Any] | None:
    """Return the stack file's ``server`` entry (pid, port, log) of a process backend, ``None`` for LocalStack."""
    if backend not in PROCESS_BACKENDS:
        return None
    recorded = (p.server_pid if backend == "embedded" else p.ministack_pid).read() or {}
    return {"pid": recorded.get("pid"), "port": port, "log": recorded.get("log")}


def _start_dashboard(p: Paths, say: Say, port: int = DASHBOARD_PORT) -> dict[str, Any] | None:
    """Reuse, move or start the dashboard; return the stack file's ``dashboard`` entry (``None``: not running).

    A dashboard that cannot start (port taken, it does not come up) is a warning, not an error: the stack is up.
    """
    if not launch.DASHBOARD_APP.is_file():
        return None
    url = f"http://localhost:{port}"
    pid = p.dashboard_pid.running_pid(launch.STREAMLIT_MARKER)
    if pid is not None:
        recorded = (p.dashboard_pid.read() or {}).get("port")
        if recorded == port:
            say(f"dashboard already running (pid {pid}) on {url}")
            return {"pid": pid, "url": url, "log": str(p.dashboard_log)}
        say(f"moving the dashboard from port {recorded} to {port} ...")
        procs.stop_group(pid)
        p.dashboard_pid.remove()
    if procs.port_in_use(port):
        say(f"warning: port {port} is in use by another program, so the dashboard was not started; free the port "
            "and run `make local-up` again, or run `make dashboard` yourself")  # fmt: skip
        return None
    say(f"starting the dashboard on {url} ...")
    try:
        handle = launch.start_dashboard(port, p.dashboard_log, pid_file=p.dashboard_pid, stack_file=p.stack_file)
    except LocalCloudError as exc:
        say(f"warning: {exc}")
        p.dashboard_pid.remove()
        return None
    return {"pid": handle.pid, "url": handle.url, "log": str(p.dashboard_log)}


# -- down, reset, status -------------------------------------------------------------------------------------------


def down(root: Path | None = None, state_dir: Path | None = None, say: Say = _quiet) -> bool:
    """Stop what ``up`` started (dashboard, server or MiniStack and their Lambda workers, LocalStack); forget it.

    The embedded stack's snapshot stays (a later ``up`` uses it only while its fingerprint matches); :func:`reset`
    removes it too. With persistence on, the data is saved first (the embedded cloud drains and saves itself,
    MiniStack saves as it stops, LocalStack's volume stays) with Terraform's state, for the next ``up``.

    Returns True when something was stopped. Idempotent: with nothing running it only tidies up.

    Raises
    ------
    LocalCloudError
        When a process does not stop or a port stays taken (the state is kept, to run ``down`` again).
    """
    p = paths(root, state_dir)
    if not p.state_dir.exists():
        say("nothing to stop: no local state")
        return False
    with locked(p):
        try:
            current = stackfile.load(p.state_dir)
        except ValueError:
            current = None
        stopped = False
        problems: list[str] = []
        session = p.persisted.session() if current is not None else None
        saved: dict[str, Any] = {}
        if session is not None and current is not None and current.backend == "embedded":
            if p.server_pid.running_pid(launch.SERVER_MARKER) is not None:
                saved = persist.save(_port(current), say)
        processes = (
            ("the dashboard", "", p.dashboard_pid, launch.STREAMLIT_MARKER, DASHBOARD_PORT),
            ("the embedded local cloud", " and its Lambda workers", p.server_pid, launch.SERVER_MARKER, DEFAULT_PORT),
            ("MiniStack", " and its Lambda workers", p.ministack_pid, launch.MINISTACK_MARKER, DEFAULT_PORT),
        )
        for what, with_it, pid_file, marker, default_port in processes:
            recorded = pid_file.read() or {}
            pid = pid_file.running_pid(marker)
            if pid is None:
                continue
            say(f"stopping {what} (pid {pid}){with_it} ...")
            stopped = True
            problems += launch.stop_process(pid, int(recorded.get("port", default_port)), what, timeout=15)

        if current is not None and current.backend == "localstack":
            say("stopping LocalStack (docker compose down -v) ...")
            stopped = True
            problem = launch.stop_localstack(p.compose_file, _port(current), keep_volumes=session is not None)
            problems += [problem] if problem else []

        if problems:
            raise LocalCloudError("; ".join(problems) + f". The state in {p.state_dir} was kept; fix and run again")

        p.forget_processes()
        if session is not None:
            persist.commit(p, session, saved, say)
        localroot.forget_state(p)
        say("local cloud stopped; local state removed" if stopped else "nothing was running; local state removed")
        if p.snapshot.meta() is not None:
            say(
                f"kept the snapshot in {p.shown(p.snapshot.directory)} (the next local-up restores it while nothing "
                "changed; `make local-reset` removes it)"
            )
        return stopped


def reset(root: Path | None = None, state_dir: Path | None = None, say: Say = _quiet) -> bool:
    """Do what :func:`down` does without saving data, then remove the snapshot and the kept data too.

    The next ``up`` applies from scratch, with empty buckets and queues.

    Returns True when a snapshot or kept data was removed.

    Raises
    ------
    LocalCloudError
        As :func:`down`.
    """
    p = paths(root, state_dir)
    if not p.state_dir.exists():
        say("nothing to stop and no snapshot: no local state")
        return False
    with locked(p):
        removed = p.snapshot.discard()  # first, so that `down` has no snapshot to keep
        forgotten = p.persisted.discard()  # and no persistence session: it stops without saving
    down(root, state_dir, say=say)
    say(f"removed the snapshot {p.shown(p.snapshot.directory)}" if removed else "no snapshot to remove")
    if forgotten:
        say(f"forgot the data kept in {p.shown(p.persisted.directory)}")
    return removed or forgotten


def status(root: Path | None = None, state_dir: Path | None = None) -> Status:
    """Return what runs: the recorded stack, the server's and dashboard's processes, and problems found.

    Each problem says what to do next (``make local-down`` and ``make local-up``, ``make dashboard``).
    """
    p = paths(root, state_dir)
    try:
        current = stackfile.load(p.state_dir)
    except ValueError as exc:
        return Status(None, problems=[str(exc)])
    result = Status(current, snapshot_saved_at=(p.snapshot.meta() or {}).get("created_at"))
    stored = p.persisted.meta()
    result.persistence = {
        "on": current is not None and p.persisted.session() is not None,
        "stored": describe(stored, p.persisted.size_bytes()),
        "bytes": p.persisted.size_bytes(),
        "saved": stored,
    }
    result.server_pid = p.server_pid.running_pid(launch.SERVER_MARKER)
    if current is not None and current.backend == "ministack":
        result.server_pid = p.ministack_pid.running_pid(launch.MINISTACK_MARKER)
    result.dashboard_pid = p.dashboard_pid.running_pid(launch.STREAMLIT_MARKER)
    if current is None:
        return result
    port = _port(current)
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
        result.server_health = launch.localstack_health(port)
        if result.server_health is None:
            result.problems.append("LocalStack does not answer; run `make local-down` and `make local-up`")
    if current.dashboard and result.dashboard_pid is None:
        result.problems.append("the dashboard is not running; run `make local-up` again or `make dashboard`")
    return result


def _port(current: Stack) -> int:
    """Return the port of the recorded stack's endpoint (``DEFAULT_PORT`` when it names none)."""
    return int(current.endpoint.rsplit(":", 1)[-1]) if current.endpoint else DEFAULT_PORT


def _load_state(p: Paths) -> Stack | None:
    """Return the recorded stack, ``None`` when there is none; a broken stack file is a :class:`LocalCloudError`."""
    try:
        return stackfile.load(p.state_dir)
    except ValueError as exc:
        raise LocalCloudError(str(exc)) from None
