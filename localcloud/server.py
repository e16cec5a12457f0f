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
"""

from __future__ import annotations

import argparse
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

HEALTH_PATH = "/_localcloud/health"

log = logging.getLogger("localcloud.server")


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


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of ``python -m localcloud.server``."""
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.server",
        description="moto server with a local Lambda executor (the embedded local cloud).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCALCLOUD_PORT", "4566")))
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("LOCALCLOUD_CACHE_DIR", ".local/lambda-cache")),
        help="where deployed function and layer zips are extracted",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("LOCALCLOUD_LAMBDA_CONCURRENCY", "2")),
        help="warm workers (parallel invocations) per function version (default 2)",
    )
    parser.add_argument(
        "--retry-delays",
        type=parse_delays,
        default=parse_delays(os.environ.get("LOCALCLOUD_RETRY_DELAYS", "1,2")),
        help="seconds before asynchronous retry 1, 2, ... (default 1,2)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the server and block until SIGTERM/SIGINT; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

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

    os.environ.setdefault("MOTO_PORT", str(args.port))
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from localcloud.executor import LocalExecutor

    endpoint = f"http://{args.host}:{args.port}"
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    executor = LocalExecutor(
        cache_dir=args.cache_dir.resolve(),
        endpoint_url=endpoint,
        log_sink=motopatch.MotoLogSink(),
        concurrency=args.concurrency,
    )
    patch = motopatch.install(executor, retry_delays=args.retry_delays, workers=args.concurrency)
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
            "lambda": {
                "concurrency": args.concurrency,
                "retry_delays_s": list(args.retry_delays),
                "pending_async": patch.invoker.pending(),
                "workers": executor.workers(),
            },
        }

    app = HealthMiddleware(DomainDispatcherApplication(create_backend_app), info)
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

    def stop(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "local cloud listening on %s (moto %s, Lambda cache %s)",
        endpoint,
        motopatch.SUPPORTED_MOTO_VERSION,
        args.cache_dir,
    )
    try:
        server.serve_forever()
    finally:
        patch.invoker.shutdown()
        executor.shutdown()
        patch.uninstall()
        server.server_close()
        log.info("local cloud stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
