"""``image-compressor invoke KEY``: the command line and terminal output of :mod:`ops.invoke`.

``make invoke KEY=photos/a.jpg`` runs it. The work (head the source object, build a real-shaped S3 or Batch
Operations event for it with a run id of its own, invoke synchronously, read the answer and the log) is
:func:`ops.invoke.invoke_object`, which the dashboard's History page ("Run again") calls too; this module parses the
options and prints the result, the response payload, the ``REPORT`` line and the function's log lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from image_compressor_cli import stackargs
from rich.console import Console

from ops import invoke
from ops.stack import StackError

EXIT_OK = 0
EXIT_NO_OUTCOME = 1
EXIT_USAGE = 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``invoke`` subcommand to ``commands`` (the subparsers of ``image-compressor``) and return it."""
    sub = commands.add_parser(
        "invoke",
        help="run the deployed function once on an object of the source bucket and show its result and log",
        description=(
            "Invoke the function synchronously on KEY, an object already in the source bucket, with a real-shaped "
            "event for its current version: the S3 ObjectCreated:Put record S3 sends (--event s3), or an S3 Batch "
            "Operations schema-2.0 task (--event batch). Each invoke is a run of its own (a run id in the event), so "
            "it is never taken for a duplicate of the upload's event: the function runs the object's whole path again "
            "(an output of the same bytes and settings is re-used, not re-encoded). Prints what happened, the "
            "response payload, the REPORT line and the function's log lines of that request."
        ),
        epilog=(
            "Exit status: 0 when the function answered and the object has its outcome (compressed, kept-original, "
            "failed, or superseded by a newer upload), 1 when the function raised or placed nothing, 2 when nothing "
            "was invoked (no stack, unknown target, no such object). "
            "Front door: make invoke KEY=photos/a.jpg [EVENT=s3|batch] [TARGET=local|aws]"
        ),
    )
    sub.add_argument("key", metavar="KEY", help="key of an object in the source bucket (as in the bucket)")
    sub.add_argument(
        "--event",
        choices=invoke.EVENTS,
        default="s3",
        help="s3: the S3 ObjectCreated:Put notification; batch: an S3 Batch Operations task (default: s3)",
    )
    stackargs.add_arguments(sub)
    sub.add_argument("--json", action="store_true", help="print the invocation as one JSON object on stdout")
    return sub


def run(args: argparse.Namespace) -> int:
    """Invoke the function on ``args.key`` (:func:`ops.invoke.invoke_object`); print; return the exit code."""
    try:
        stack = stackargs.resolve(args, invoke.NEEDED_OUTPUTS)
        done = invoke.invoke_object(stack, args.key, event=args.event)
    except (StackError, invoke.InvokeError) as exc:
        sys.stderr.write(f"image-compressor invoke: error: {exc}\n")
        return EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(done.to_dict(), indent=2, default=str) + "\n")
    else:
        print_invocation(Console(file=sys.stdout, highlight=False, soft_wrap=True), done)
    return EXIT_OK if done.ok else EXIT_NO_OUTCOME


def print_invocation(out: Console, done: invoke.Invocation) -> None:
    """Print ``done`` for people: what happened, the response payload, the ``REPORT`` line and the log lines."""
    out.print(
        f"Invoked on {done.key} ({done.event} event, run {done.run_id}, source ETag {done.source_etag}): "
        f"request {done.request_id or '?'}, {done.round_trip_ms:.0f} ms round trip",
        markup=False,
    )
    out.print(f"Result: {done.headline()}", markup=False)
    out.print("Response payload:", markup=False)
    payload = done.payload if isinstance(done.payload, str) else json.dumps(done.payload, indent=2, default=str)
    out.print(_indent(payload), markup=False)
    out.print(done.report or "REPORT line: not found in the log", markup=False)
    where = "the invoke's log tail" if done.log_source == "tail" else "the log group (the 4 KB tail was cut)"
    out.print(f"Log lines of request {done.request_id or '?'} ({len(done.log_lines)}, from {where}):", markup=False)
    for line in done.log_lines:
        out.print(f"  {line}", markup=False)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
