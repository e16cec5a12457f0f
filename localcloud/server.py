"""The embedded local cloud's server: moto's server app plus the local Lambda executor, in one process.

Run it with ``python -m localcloud.server --port 4566``. It checks the moto version, routes moto's Lambda
invocations to the local executor (:mod:`localcloud.motopatch`), and serves moto's AWS APIs on
``http://127.0.0.1:<port>``. ``GET /_localcloud/health`` answers with a JSON document (``{"service": "localcloud",
...}``) so tools can tell this server from anything else on the port. SIGTERM or SIGINT stops the server and every
Lambda worker.

Settings (flags, or environment variables for the defaults):

- ``--port`` / ``LOCALCLOUD_PORT`` (4566), ``--host`` (127.0.0.1)
- ``--cache-dir`` / ``LOCALCLOUD_CACHE_DIR`` (``.local/lambda-cache``): extracted function and layer zips
- ``--concurrency`` / ``LOCALCLOUD_LAMBDA_CONCURRENCY`` (2): warm workers per function version
- ``--retry-delays`` / ``LOCALCLOUD_RETRY_DELAYS`` (``1,2``): seconds before async retries 1, 2, ...
- ``--init-timeout`` / ``LOCALCLOUD_INIT_TIMEOUT`` (60): seconds a Lambda worker may take to start, on top of the
  function's timeout
- ``--enforce-memory`` / ``--no-enforce-memory`` / ``LOCALCLOUD_ENFORCE_MEMORY`` (1): kill a Lambda worker whose
  resident memory goes over its function's ``MemorySize`` (``Runtime.OutOfMemory``, :mod:`localcloud.memlimit`)
- ``EXTRA_CORS_ALLOWED_ORIGINS`` (none) / ``DISABLE_CORS_CHECKS``: web origins allowed besides loopback ones, as
  in LocalStack; requests whose Host is not a loopback name are always refused (:mod:`localcloud.guard`)
- ``--faults`` / ``LOCALCLOUD_FAULTS=1``: accept fault-injection rules on ``/_localcloud/faults`` (AWS calls answered
  with an error or a delay; :mod:`localcloud.faults`); off by default, on in the test fixtures
- ``--snapshot-file FILE``: ``POST /_localcloud/snapshot`` writes the state of every AWS service to FILE
  (:mod:`localcloud.snapshot`); without it that path answers 404
- ``--restore FILE``: start with the state saved in FILE; when it cannot be loaded the server starts empty, logs why
  and says so in its health document (``snapshot.restored_from`` is ``null``, ``snapshot.restore_error`` the reason).
  Asynchronous invocations the file holds (a persistence save) are queued again once the server listens.
- ``--persist-file FILE`` (persistence, ``make local-up PERSIST=1``): ``POST /_localcloud/persist`` drains the
  asynchronous invocations, turns new requests away and saves the data with them to FILE
  (:mod:`localcloud.persistence`); without it that path answers 404
- ``/_localcloud/debugger``: ``POST {"function", "port"}`` makes that function's worker listen for a debugger on
  ``127.0.0.1:port`` (one worker, its timeout paused while stopped), ``DELETE`` stops it, ``GET`` and the health
  document's ``debugger`` say ``waiting`` or ``attached`` (:mod:`localcloud.debugger`; ``make local-up DEBUG=1``)
- ``--enforce-iam`` / ``--no-enforce-iam`` / ``ENFORCE_IAM`` (1) and ``--iam-soft-mode`` / ``IAM_SOFT_MODE`` (0):
  evaluate every call made with credentials other than the administrator's as AWS does, refuse (or, soft, log and
  let through) what the policies deny; the function runs as a session of its role (:mod:`localcloud.iamenforce`).
  ``GET /_localcloud/iam`` answers the decisions, ``DELETE`` clears them; ``LOCALCLOUD_SECURE_TRANSPORT`` (1) is
  the value of ``aws:SecureTransport``
- ``--exit-with PID`` / ``LOCALCLOUD_EXIT_WITH_PID``: stop (with every worker) as soon as process ``PID`` is gone.
  Test fixtures pass their own pid, so a test run that is killed leaves no server behind; ``make local-up`` does
  not set it, because its server is meant to outlive the command that started it.

An exception in any background thread is logged (with its traceback) and the server keeps going. While an
asynchronous invocation has been unfinished for longer than :data:`STALL_WARN_S`, the server logs what runs and the
stack of every thread, once per :data:`STALL_WARN_S`.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from localcloud import debugger, faults, guard, iamenforce, memlimit, persistence, switches

HEALTH_PATH = "/_localcloud/health"
#: The debugger's switch and state (``localcloud.debugger.DEBUGGER_PATH``, here for the operations layer).
DEBUGGER_PATH = debugger.DEBUGGER_PATH
#: IAM's decisions (``localcloud.iamenforce.IAM_PATH``, for the operations layer): ``GET`` reads, ``DELETE`` clears.
IAM_PATH = iamenforce.IAM_PATH
#: ``POST`` here saves the AWS state to the ``--snapshot-file`` (the operations layer calls it after an apply).
SNAPSHOT_PATH = "/_localcloud/snapshot"
#: ``POST`` here saves the data before a stop (persistence; ``local-down`` calls it), see ``--persist-file``.
PERSIST_PATH = "/_localcloud/persist"
#: Port when neither ``--port`` nor ``LOCALCLOUD_PORT`` says (equal to ``ops.defaults.LOCAL_PORT``, pinned by a test).
DEFAULT_PORT = 4566
STALL_WARN_S = 300.0

log = logging.getLogger("localcloud.server")


def process_start_time(pid: int) -> str | None:
    """Return the start time of process ``pid`` (clock ticks since boot, from /proc), or ``None`` when it is gone.

    Together with the pid it names one process: a recycled pid has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    # After the command name: state is field 3 of stat(5), starttime field 22.
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


class Watchdog:
    """Background checks of the server: the watched parent process, and invocations that stall.

    Parameters
    ----------
    stop : Callable[[str], None]
        Called (once) with the reason when the watched process is gone.
    exit_with : int | None
        Pid to watch (``None``: watch nothing).
    stalled : Callable[[], str | None]
        Returns a description of a stall worth logging, or ``None``.
    interval : float
        Seconds between checks of the watched process.
    """

    def __init__(
        self,
        stop: Callable[[str], None],
        exit_with: int | None,
        stalled: Callable[[], str | None],
        interval: float = 1.0,
    ) -> None:
        self.stop = stop
        self.exit_with = exit_with
        self.started_at = process_start_time(exit_with) if exit_with else None
        self.stalled = stalled
        self.interval = interval
        self._halt = threading.Event()
        self._last_warning = 0.0
        self._thread = threading.Thread(target=self._run, name="localcloud-watchdog", daemon=True)

    def start(self) -> None:
        """Start checking in a daemon thread; stop the server at once when the watched process is already gone."""
        if self.exit_with is not None and self.started_at is None:
            self.stop(f"process {self.exit_with} (--exit-with) does not exist")
            return
        self._thread.start()

    def close(self) -> None:
        """Stop the checks."""
        self._halt.set()

    def parent_gone(self) -> bool:
        """Return True when the watched process no longer exists (or its pid now names another process)."""
        return self.exit_with is not None and process_start_time(self.exit_with) != self.started_at

    def _run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                if self.parent_gone():
                    self.stop(f"process {self.exit_with} (--exit-with) is gone")
                    return
                now = time.monotonic()
                if now - self._last_warning >= STALL_WARN_S:
                    report = self.stalled()
                    if report:
                        self._last_warning = now
                        log.warning("%s; the stack of every thread follows", report)
                        with contextlib.suppress(Exception):
                            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            except Exception:
                log.exception("the server's watchdog check failed; it keeps checking")


def log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook`` of the server: log a background thread's uncaught exception with its traceback."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    log.error("uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def parse_delays(text: str) -> tuple[float, ...]:
    """Parse ``"1,2"`` into ``(1.0, 2.0)``.

    Raises
    ------
    argparse.ArgumentTypeError
        When a value is not a non-negative number.
    """
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        delays = ()
    if not delays or any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError(f"retry delays must be comma-separated seconds like 1,2; got {text!r}")
    return delays


def format_delays(delays: tuple[float, ...]) -> str:
    """Write ``delays`` the way :func:`parse_delays` reads them: ``(1.0, 2.0)`` is ``"1,2"``."""
    return ",".join(f"{delay:g}" for delay in delays)


class HealthMiddleware:
    """WSGI middleware that answers :data:`HEALTH_PATH` itself and passes everything else to moto's app."""

    def __init__(self, app: Any, info: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.info = info

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve the health document for ``GET /_localcloud/health``; delegate every other request to moto."""
        if environ.get("PATH_INFO") == HEALTH_PATH:
            body = json.dumps(self.info()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


class SnapshotMiddleware:
    """WSGI middleware that answers ``POST`` :data:`SNAPSHOT_PATH` by saving the state; the rest goes to ``app``.

    Parameters
    ----------
    app : Any
        The WSGI application behind it.
    target : Path | None
        Where the state is written (the server's ``--snapshot-file``); ``None`` answers 404 with how to enable it.
    """

    def __init__(self, app: Any, target: Path | None) -> None:
        self.app = app
        self.target = target

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Save the state for ``POST /_localcloud/snapshot`` (JSON summary or error); delegate everything else."""
        if environ.get("PATH_INFO") != SNAPSHOT_PATH:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            status, document = "405 Method Not Allowed", {"error": f"use POST {SNAPSHOT_PATH}"}
        elif self.target is None:
            status, document = "404 Not Found", {"error": "this server was started without --snapshot-file FILE"}
        else:
            from localcloud import snapshot

            try:
                status, document = "200 OK", snapshot.dump(self.target)
            except snapshot.SnapshotError as exc:
                log.error("%s", exc)
                status, document = "500 Internal Server Error", {"error": str(exc)}
        body = json.dumps(document).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def restore(path: Path | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load the state saved in ``path`` into moto (see :mod:`localcloud.snapshot`).

    Returns what the health shows, ``{"restored_from": str | None, "restore_error": str | None, ...}``, and the
    asynchronous invocations the file saved (persistence), to queue again once the server listens. A file that
    cannot be loaded is logged and reported, and the server starts empty (the caller applies the stack as on a
    first start).
    """
    if path is None:
        return {"restored_from": None, "restore_error": None}, []
    from localcloud import snapshot

    try:
        summary = snapshot.load(path)
    except snapshot.SnapshotError as exc:
        log.warning("starting empty: %s", exc)
        return {"restored_from": None, "restore_error": str(exc)}, []
    log.info("restored %s from %s in %.2f s", ", ".join(summary["services"]), path, summary["seconds"])
    pending = list(summary["extra"].get("pending_async") or [])
    return {"restored_from": str(path), "restore_error": None, "restore_s": summary["seconds"]}, pending


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of ``python -m localcloud.server``."""
    # Here, not at the top: the operations layer imports this module for its paths and needs none of the executor.
    from localcloud.asyncinvoke import DEFAULT_RETRY_DELAYS
    from localcloud.executor import DEFAULT_CONCURRENCY, LOCAL_INIT_TIMEOUT_S

    parser = argparse.ArgumentParser(
        prog="python -m localcloud.server",
        description="moto server with a local Lambda executor (the embedded local cloud).",
    )
    parser.add_argument("--host", default=guard.LOOPBACK_HOST, help=f"address to bind (default {guard.LOOPBACK_HOST})")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCALCLOUD_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("LOCALCLOUD_CACHE_DIR", ".local/lambda-cache")),
        help="where deployed function and layer zips are extracted",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("LOCALCLOUD_LAMBDA_CONCURRENCY", DEFAULT_CONCURRENCY)),
        help=f"warm workers (parallel invocations) per function version (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--retry-delays",
        type=parse_delays,
        default=(
            parse_delays(os.environ["LOCALCLOUD_RETRY_DELAYS"])
            if "LOCALCLOUD_RETRY_DELAYS" in os.environ
            else DEFAULT_RETRY_DELAYS
        ),
        help=f"seconds before asynchronous retry 1, 2, ... (default {format_delays(DEFAULT_RETRY_DELAYS)})",
    )
    parser.add_argument(
        "--init-timeout",
        type=float,
        default=float(os.environ.get("LOCALCLOUD_INIT_TIMEOUT", LOCAL_INIT_TIMEOUT_S)),
        help="seconds a Lambda worker may take to start, on top of the function timeout "
        f"(default {LOCAL_INIT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--enforce-memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"kill a Lambda worker over its function's MemorySize (default: on, or {memlimit.ENFORCE_ENV}=0|1)",
    )
    parser.add_argument(
        "--exit-with",
        type=int,
        default=int(os.environ["LOCALCLOUD_EXIT_WITH_PID"]) if os.environ.get("LOCALCLOUD_EXIT_WITH_PID") else None,
        metavar="PID",
        help="stop as soon as process PID is gone (test fixtures pass their own pid)",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        default=os.environ.get(faults.FAULTS_ENV, "") not in ("", "0", "false", "no"),
        help=f"accept fault-injection rules on {faults.FAULTS_PATH} (tests; default off, or {faults.FAULTS_ENV}=1)",
    )
    parser.add_argument(
        "--snapshot-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"where POST {SNAPSHOT_PATH} saves the state of every service (default: snapshots are off)",
    )
    parser.add_argument(
        "--restore",
        type=Path,
        default=None,
        metavar="FILE",
        help="start with the state saved in FILE (a snapshot of this server); empty when it cannot be loaded",
    )
    parser.add_argument(
        "--persist-file",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"where POST {PERSIST_PATH} saves the data before a stop (default: persistence is off)",
    )
    parser.add_argument(
        "--enforce-iam",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="evaluate every call made with credentials other than the administrator's (default: on, or ENFORCE_IAM)",
    )
    parser.add_argument(
        "--iam-soft-mode",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log and record each IAM denial, and let the call through (default: off, or IAM_SOFT_MODE)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the server and block until SIGTERM/SIGINT; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    threading.excepthook = log_thread_exception

    # moto reads this at import: no CORS "*" for every origin; OriginGuard decides who may call cross-origin.
    os.environ[guard.MOTO_CORS_ENV] = "true"
    # Imported here so --help works and the version check comes first with a clear message.
    from localcloud import motopatch

    try:
        motopatch.check_moto_version()
    except motopatch.UnsupportedMotoVersion as exc:
        log.error("%s", exc)
        return 2
    if args.concurrency < 1:
        log.error("--concurrency must be at least 1, got %d", args.concurrency)
        return 2
    if args.init_timeout <= 0:
        log.error("--init-timeout must be more than 0 seconds, got %s", args.init_timeout)
        return 2
    try:
        if args.enforce_memory is None:
            args.enforce_memory = memlimit.enforce_from_env(os.environ)
        mode = iamenforce.Mode.from_env(os.environ)
        secure_transport = switches.flag(os.environ, "LOCALCLOUD_SECURE_TRANSPORT", True)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    enforcer = iamenforce.Enforcer(
        iamenforce.Mode(
            enforce=mode.enforce if args.enforce_iam is None else args.enforce_iam,
            soft=mode.soft if args.iam_soft_mode is None else args.iam_soft_mode,
        ),
        secure_transport=secure_transport,
    )

    os.environ.setdefault("MOTO_PORT", str(args.port))
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from localcloud import iamseam, rolesession, sqssend
    from localcloud.dispatch import CachedDispatcher
    from localcloud.executor import LocalExecutor

    endpoint = f"http://{args.host}:{args.port}"
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    executor = LocalExecutor(
        cache_dir=args.cache_dir.resolve(),
        endpoint_url=endpoint,
        log_sink=motopatch.MotoLogSink(enforcer),
        concurrency=args.concurrency,
        init_timeout=args.init_timeout,
        enforce_memory=args.enforce_memory,
        credentials=rolesession.RoleSessions(enforcer).issue,
    )
    patch = motopatch.install(executor, retry_delays=args.retry_delays, workers=args.concurrency, enforcer=enforcer)
    iamseam.install(enforcer)
    sqssend.install()
    log.info("IAM: %s", enforcer.mode.name)
    restored, saved_invocations = restore(args.restore)
    persisted = {"file": str(args.persist_file) if args.persist_file else None, "requeued": 0}
    started = time.time()

    def info() -> dict[str, Any]:
        import moto

        return {
            "service": "localcloud",
            "status": "running",
            "pid": os.getpid(),
            "endpoint": endpoint,
            "moto_version": moto.__version__,
            "default_region": region,
            "uptime_s": round(time.time() - started, 1),
            "faults": args.faults,
            "lambda": {
                "concurrency": args.concurrency,
                "memory_enforced": args.enforce_memory,
                "retry_delays_s": list(args.retry_delays),
                "pending_async": patch.invoker.pending(),
                "throttles": patch.concurrency.throttles() if patch.concurrency else 0,
                "oldest_pending_s": patch.invoker.oldest_pending_s(),
                "running_async": patch.invoker.running(),
                "workers": executor.workers(),
            },
            "debugger": executor.debug_state(),
            "snapshot": restored,
            "persistence": persisted,
            "iam": {"mode": enforcer.mode.name, "denials_total": enforcer.record.denials_total},
        }

    policy = guard.OriginPolicy.from_env(os.environ)
    injector = faults.FaultInjector() if args.faults else None
    moto_app = faults.FaultMiddleware(CachedDispatcher(create_backend_app), injector)
    control = debugger.Control(executor, patch.function_spec, args.host)
    gated = persistence.PersistMiddleware(
        SnapshotMiddleware(debugger.DebuggerMiddleware(moto_app, control, region), args.snapshot_file),
        args.persist_file,
        patch.invoker,
        PERSIST_PATH,
    )
    app = guard.OriginGuard(HealthMiddleware(iamenforce.IamMiddleware(gated, enforcer), info), policy)
    try:
        server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as exc:
        patch.invoker.shutdown()
        executor.shutdown()
        log.error(
            "cannot listen on %s:%d (%s); stop what uses the port or pick another one with --port",
            args.host,
            args.port,
            exc.strerror or exc,
        )
        return 1

    stopping = threading.Event()

    def shut_down(reason: str) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("%s, shutting down", reason)
        threading.Thread(target=server.shutdown, name="localcloud-shutdown", daemon=True).start()

    def stop(signum: int, _frame: Any) -> None:
        shut_down(f"received {signal.Signals(signum).name}")

    def stalled() -> str | None:
        oldest = patch.invoker.oldest_pending_s()
        if oldest < STALL_WARN_S or executor.debug_state().get("paused"):  # a debugger holds it: not a stall
            return None
        return (
            f"an asynchronous invocation has been unfinished for {oldest:.0f} s "
            f"({patch.invoker.pending()} pending; running: {patch.invoker.running()}; workers: {executor.workers()})"
        )

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watchdog = Watchdog(shut_down, args.exit_with, stalled)
    watchdog.start()
    # Listening now (connections wait in the backlog until serve_forever): the saved events may call back.
    persisted["requeued"] = persistence.resubmit(saved_invocations, patch)
    log.info(
        "local cloud listening on %s (moto %s, Lambda cache %s)",
        endpoint,
        motopatch.SUPPORTED_MOTO_VERSION,
        args.cache_dir,
    )
    try:
        if not stopping.is_set():
            server.serve_forever()
    finally:
        watchdog.close()
        patch.invoker.shutdown()  # logs how many asynchronous invocations it drops
        executor.shutdown()
        patch.uninstall()
        server.server_close()
        log.info("local cloud stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
