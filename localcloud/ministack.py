"""``python -m localcloud.ministack``: MiniStack (a LocalStack-compatible emulator) behind the local cloud's guard.

MiniStack serves 90+ AWS APIs and runs Python Lambda functions in warm local worker processes on its own interpreter
(no Docker). By itself it answers every ``Host`` and every web origin (CORS ``*``), and binds ``0.0.0.0`` unless
``BIND_HOST`` says otherwise. This entry point closes that the way the embedded server is closed:

- it binds a loopback address only (``--host``, default ``127.0.0.1``; anything else is refused);
- it wraps MiniStack's ASGI app in :class:`localcloud.guard.AsgiOriginGuard` (foreign Hosts and origins get 403,
  loopback origins and ``EXTRA_CORS_ALLOWED_ORIGINS`` get CORS headers naming themselves, never ``*``), then runs
  MiniStack's own ``main()`` (its Hypercorn server, its signal handling) on the wrapped app.

It also keeps throttled asynchronous events queued, as Lambda does, where MiniStack counts a throttle as a failed
attempt (:mod:`localcloud.ministackasync`; ``GET /_localcloud/lambda`` says what is pending).
``--no-queue-throttled`` (or ``LOCALCLOUD_QUEUE_THROTTLED=0``) leaves MiniStack's own handling in place: the test
that shows the difference upstream runs it so.

It runs on the interpreter of MiniStack's own venv (``.venv-ministack``, Python 3.13 from
``requirements/ministack.lock``: MiniStack pins an older botocore than the project, and its Lambda workers need the
runtime's Python and boto3), with the project root on ``sys.path`` for this package. The seam (``ministack.app.app``
read by ``ministack.app.main``) is written for :data:`MINISTACK_VERSION` exactly; another version is refused.
Standard library only besides MiniStack itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from importlib import metadata

from localcloud import guard, ministackasync

#: The MiniStack release this seam was written for (``requirements/ministack.lock`` pins the same).
MINISTACK_VERSION = "1.5.33"
#: MiniStack's health endpoint (also answered at ``/_localstack/health``).
HEALTH_PATH = "/_ministack/health"
#: Account id MiniStack reports (bucket names that include the account id change with it).
ACCOUNT_ID = "000000000000"
_LOOPBACK_BINDS = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``python -m localcloud.ministack``."""
    parser = argparse.ArgumentParser(prog="python -m localcloud.ministack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host", default=guard.LOOPBACK_HOST, help=f"loopback address to bind (default {guard.LOOPBACK_HOST})"
    )
    parser.add_argument("--port", type=int, default=4566, help="port (default 4566)")
    parser.add_argument("--region", default="eu-west-1", help="MiniStack's default region (MINISTACK_REGION)")
    parser.add_argument(
        "--exit-with", type=int, default=None, help="stop (with every Lambda worker) as soon as process PID is gone"
    )
    parser.add_argument(
        "--queue-throttled",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get(ministackasync.QUEUE_THROTTLED_ENV, "1") not in ("0", "false", "no"),
        help="keep throttled asynchronous events queued and retry them, as Lambda does (default: on, or "
        f"{ministackasync.QUEUE_THROTTLED_ENV}=0|1); off: MiniStack counts a throttle as a failed attempt",
    )
    return parser


def check_version() -> str:
    """Return the installed MiniStack version; exit with the command that installs the pinned one otherwise."""
    try:
        found = metadata.version("ministack")
    except metadata.PackageNotFoundError:
        found = "not installed"
    if found != MINISTACK_VERSION:
        sys.exit(
            f"error: localcloud.ministack is written for ministack {MINISTACK_VERSION}, found {found} on "
            f"{sys.executable}; run `make .venv-ministack/.installed` (pip install -r requirements/ministack.lock)"
        )
    return found


def _watch(pid: int) -> None:
    """Stop this process group (MiniStack and its Lambda workers) once process ``pid`` is gone."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        except PermissionError:
            pass
        time.sleep(0.5)
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGTERM)
    else:
        os.kill(os.getpid(), signal.SIGTERM)


#: How MiniStack's warm worker collects an invocation's log lines from the worker's stderr (difference 5 in
#: docs/local-cloud.md): wait up to this long for the first line, stop once no line came for this long, and never
#: wait longer than the cap. MiniStack's own 50 ms / 5 ms / 250 ms cut an invocation's lines off under CPU load: the
#: rest went to the next invocation's log, or nowhere when none followed.
LOG_FIRST_LINE_WAIT_S = 0.25
LOG_IDLE_CONFIRM_S = 0.05
LOG_HARD_CAP_S = 2.0


def patient_log_drain(worker_class: type) -> None:
    """Give MiniStack's ``Worker._drain_stderr_bounded`` the waits above as its defaults (our seam, no file patched).

    Calls that pass their own waits keep them.
    """
    drain = worker_class._drain_stderr_bounded
    drain.__defaults__ = (LOG_FIRST_LINE_WAIT_S, LOG_IDLE_CONFIRM_S, LOG_HARD_CAP_S)


def main(argv: list[str] | None = None) -> None:
    """Configure MiniStack from the arguments, wrap its app in the guard and run its server (never returns)."""
    args = build_parser().parse_args(argv)
    if args.host not in _LOOPBACK_BINDS:
        sys.exit(f"error: refusing to bind {args.host}: the local cloud listens on loopback only (127.0.0.1)")
    check_version()
    # MiniStack reads these at import and in main(): where to listen, its region, Lambda in local processes.
    os.environ["BIND_HOST"] = args.host
    os.environ["GATEWAY_PORT"] = str(args.port)
    os.environ.setdefault("MINISTACK_REGION", args.region)
    os.environ.setdefault("LAMBDA_EXECUTOR", "local")
    policy = guard.OriginPolicy.from_env(os.environ)

    import ministack.app as ministack_app  # after the environment is set: MiniStack reads it at import
    from ministack.core import lambda_runtime

    patient_log_drain(lambda_runtime.Worker)
    app = ministack_app.app
    if args.queue_throttled:
        from ministack.services import lambda_svc

        queue = ministackasync.install(lambda_svc, f"http://{args.host}:{args.port}")
        app = ministackasync.AsgiStatus(app, queue.status)
    # ministack.app.main() serves the module-level ``app``: serve the guarded one instead.
    ministack_app.app = guard.AsgiOriginGuard(app, policy)
    if args.exit_with is not None:
        threading.Thread(target=_watch, args=(args.exit_with,), name="exit-with", daemon=True).start()
    sys.argv = [sys.argv[0]]  # MiniStack's main() parses sys.argv itself
    ministack_app.main()


if __name__ == "__main__":
    main()
