"""``python -m ops``: what ``make local-up``, ``local-down``, ``local-reset``, ``local-status``, ``dashboard`` run.

``validate`` (part of ``make check``) runs ``terraform validate`` on both roots offline.

The operations on a deployed stack, backfill and redrive, live in ``ops/backfill.py`` and ``ops/redrive.py``; their
command line is the CLI users already have (``image-compressor backfill|redrive``, behind ``make backfill|redrive``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console

from ops import datadir, debugging, defaults, iammode, launch, stackfile, terraform
from ops import local as stack
from ops.procs import LocalCloudError
from ops.stack import Stack

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def _say(message: str) -> None:
    console.print(message, markup=False)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``python -m ops``."""
    parser = argparse.ArgumentParser(
        prog="python -m ops",
        description="Run the pipeline's stack locally (embedded moto, MiniStack or LocalStack) and the dashboard.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the local state lives (default .local/ in the project, or LOCALCLOUD_STATE_DIR)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local cloud, apply the stack, start the dashboard")
    up.add_argument(
        "--backend",
        choices=stack.BACKENDS,
        default=os.environ.get("BACKEND", "auto"),
        help="auto (LocalStack when a Docker engine answers, else embedded), embedded, localstack or ministack",
    )
    up.add_argument("--port", type=int, default=int(os.environ.get("LOCALCLOUD_PORT", stack.DEFAULT_PORT)))
    up.add_argument("--no-dashboard", action="store_true", help="do not start the Streamlit dashboard")
    up.add_argument(
        "--hot-reload",
        action="store_true",
        help="run the function live from lambda/ (a saved change takes effect at the next invocation; no build, no "
        "apply); without it, the built zip",
    )
    up.add_argument(
        "--persist",
        action=argparse.BooleanOptionalAction,
        default=datadir.enabled(),
        help="keep the data (objects, messages, logs) across down/up, as LocalStack's PERSISTENCE=1 (default: on when "
        "PERSISTENCE=1 is set; make local-up PERSIST=1); `reset` forgets it",
    )
    up.add_argument(
        "--debug",
        action="store_true",
        help="embedded only: the function's worker waits for a debugger (debugpy) on 127.0.0.1:--debug-port; its "
        "timeout stops while it is stopped at a breakpoint (make local-up DEBUG=1)",
    )
    up.add_argument(
        "--debug-port",
        type=int,
        default=int(os.environ.get("DEBUG_PORT") or debugging.DEFAULT_DEBUG_PORT),
        help=f"port of the debugger with --debug (default {debugging.DEFAULT_DEBUG_PORT}, or DEBUG_PORT)",
    )
    up.add_argument(
        "--enforce-iam",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="embedded: judge every call made with credentials other than test/test as AWS does (default: on; "
        "ENFORCE_IAM=0|1, LocalStack's name; make local-up ENFORCE_IAM=0)",
    )
    up.add_argument(
        "--iam-soft-mode",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="embedded: log and record each denial but let the call through (default: IAM_SOFT_MODE, off; make "
        "local-up IAM_SOFT_MODE=1)",
    )
    up.add_argument(
        "--dashboard-port",
        type=int,
        default=int(os.environ.get("DASHBOARD_PORT", stack.DASHBOARD_PORT)),
        help=f"port of the dashboard on 127.0.0.1 (default {defaults.DASHBOARD_PORT})",
    )
    commands.add_parser(
        "down", help="stop everything `up` started and remove the local state (the embedded stack's snapshot stays)"
    )
    commands.add_parser(
        "reset",
        help="`down` without saving data, and remove the snapshot and the kept data: the next `up` starts from scratch",
    )
    dash = commands.add_parser("dashboard", help="run the dashboard in the foreground (make dashboard)")
    dash.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("DASHBOARD_PORT", defaults.DASHBOARD_PORT)),
        help=f"port on 127.0.0.1 (default {defaults.DASHBOARD_PORT})",
    )
    commands.add_parser(
        "validate",
        help="terraform validate both roots (envs/local, envs/aws) offline, with their data in .local/terraform/",
    )
    st = commands.add_parser("status", help="show what runs and the stack outputs")
    st.add_argument("--json", action="store_true", help="print the state file plus process status as JSON")
    return parser


def _summary(current: Stack, keep_data: bool) -> None:
    out = current.outputs
    source = out.get("source_bucket", "<source bucket>")
    endpoint = current.endpoint
    _say("")
    _say(f"The {current.backend} local cloud is up.")
    _say(f"  {'endpoint':<24} {endpoint}   (region {current.region}, credentials test/test)")
    for name in stackfile.STACK_OUTPUTS:
        if name in out:
            _say(f"  {name:<24} {out[name]}")
    if current.dashboard:
        _say(f"  {'dashboard':<24} {current.dashboard['url']}")
    else:
        _say(f"  {'dashboard':<24} not running (start it with `make dashboard`)")
    _say(f"  {'hot reload':<24} {_hot_reload_text(current)}")
    if current.backend == "embedded":
        _say(f"  {'debugger':<24} {debugging.stack_debugger(current) or 'off (make local-up DEBUG=1)'}")
    _say(f"  {'IAM':<24} {iammode.stack_text(current)}")
    if current.hot_reload_dir:
        _say(f"  {'':<24} save a file under it: the next invocation runs it (no `make build`, no apply)")
    kept = "on: `make local-down` keeps the data" if keep_data else "off (`make local-up PERSIST=1` keeps data)"
    _say(f"  {'persistence':<24} {kept}")
    _say("")
    _say("Upload a photo:")
    _say(
        f"  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --endpoint-url {endpoint} --region {current.region} "
        f"s3 cp photo.jpg s3://{source}/photo.jpg"
    )
    _say(
        f"  .venv/bin/python -c \"import boto3; boto3.client('s3', endpoint_url='{endpoint}', "
        f"region_name='{current.region}', aws_access_key_id='test', aws_secret_access_key='test')"
        f".upload_file('photo.jpg', '{source}', 'photo.jpg')\""
    )
    _say("Stop it with `make local-down`.")


def _hot_reload_text(current: Stack) -> str:
    """Return ``on (<dir>)`` or ``off (the built zip)`` for the stack's function code."""
    return f"on ({current.hot_reload_dir})" if current.hot_reload_dir else "off (the function runs build/lambda.zip)"


def _status(args: argparse.Namespace) -> int:
    found = stack.status(state_dir=args.state_dir)
    if args.json:
        document = {
            "up": found.up,
            "state": stackfile.document(found.state) if found.state else None,
            "server_pid": found.server_pid,
            "server_health": found.server_health,
            "dashboard_pid": found.dashboard_pid,
            "snapshot_saved_at": found.snapshot_saved_at,
            "persistence": found.persistence,
            "problems": found.problems,
        }
        console.print_json(json.dumps(document))
        return 0 if found.up or found.state is None else 1
    if found.state is None:
        _say("The local cloud is not running (no stack recorded). Start it with `make local-up`.")
        _say(f"  kept data (PERSIST=1): {found.persistence.get('stored')}")
        for problem in found.problems:
            _say(f"  problem: {problem}")
        return 0
    current = found.state
    _say(f"backend   {current.backend}")
    _say(f"endpoint  {current.endpoint}  (region {current.region})")
    _say(f"hot reload {_hot_reload_text(current)}")
    if found.snapshot_saved_at:
        _say(f"snapshot  saved {found.snapshot_saved_at} (the next local-up on a new server restores it)")
    kept = found.persistence
    if kept.get("on"):
        _say(f"persistence on (PERSIST=1): `make local-down` saves the data; stored now: {kept.get('stored')}")
    else:
        _say(f"persistence off (`make local-up PERSIST=1` keeps data across local-down); stored: {kept.get('stored')}")
    if current.backend == "embedded":
        health = found.server_health or {}
        running = f"running (pid {found.server_pid})" if found.server_health else "NOT running"
        _say(f"server    {running}")
        _say(f"debugger  {debugging.describe(health.get('debugger')) or 'off (make local-up DEBUG=1)'}")
        if found.server_health:
            _say(f"IAM: {iammode.describe(health.get('iam'))}")
        for worker in (health.get("lambda") or {}).get("workers", []):
            how = "with its layers" if worker.get("uses_layers") else "with project packages"
            name = f"{worker['function']} {worker['version']}"
            _say(f"  Lambda worker pid {worker['pid']}: {name}, {worker['python']} {how}")
    elif current.backend == "ministack":
        health = found.server_health or {}
        running = f"running (pid {found.server_pid}), MiniStack {health.get('version')}" if health else "NOT running"
        _say(f"ministack {running}")
        _say(f"IAM: {iammode.backend_note(current.backend)}")
    else:
        _say(f"LocalStack {'answers' if found.server_health else 'does NOT answer'}")
        _say(f"IAM: {iammode.backend_note(current.backend)}")
    if current.dashboard:
        running = f"running (pid {found.dashboard_pid})" if found.dashboard_pid else "NOT running"
        _say(f"dashboard {current.dashboard.get('url')} {running}")
    _say("outputs")
    for name, value in sorted(current.outputs.items()):
        _say(f"  {name:<24} {value}")
    for problem in found.problems:
        _say(f"problem: {problem}")
    return 0 if found.up else 1


def _validate() -> int:
    """Validate each Terraform root with a data directory of its own under ``.local/terraform/`` (kept for speed)."""
    for root in (terraform.LOCAL_ROOT, terraform.AWS_ROOT):
        data_dir = terraform.CLI_CONFIG_DIR / f"validate-{root.name}"
        terraform.validate(root, data_dir=data_dir)
        _say(f"terraform validate: {root.relative_to(defaults.ROOT)} is valid")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status (errors are printed with what to do next)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            iam = iammode.settings(args.enforce_iam, args.iam_soft_mode)  # a bad value stops here, before anything
            current = stack.up(
                backend=args.backend,
                port=args.port,
                state_dir=args.state_dir,
                dashboard=not args.no_dashboard,
                dashboard_port=args.dashboard_port,
                say=_say,
                hot_reload=args.hot_reload,
                keep_data=args.persist,
                debug_port=args.debug_port if args.debug else None,
                iam=iam,
            )
            _summary(current, stack.status(state_dir=args.state_dir).persistence.get("on", False))
            return 0
        if args.command == "down":
            stack.down(state_dir=args.state_dir, say=_say)
            return 0
        if args.command == "reset":
            stack.reset(state_dir=args.state_dir, say=_say)
            return 0
        if args.command == "dashboard":
            launch.run_dashboard(args.port)
            return 0
        if args.command == "validate":
            return _validate()
        return _status(args)
    except (LocalCloudError, terraform.TerraformError) as exc:
        errors.print(f"error: {exc}", markup=False)
        return 1
    except KeyboardInterrupt:
        errors.print("interrupted; run `make local-down` to stop what was started", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
