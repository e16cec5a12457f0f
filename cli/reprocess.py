"""``image-compressor reprocess KEY...``: the command line and terminal output of :mod:`ops.reprocess`.

``make reprocess KEYS="a.jpg b.jpg"`` runs it. The work (retire the failed copy's event record, replay the upload's
event through the function, wait for the outcome, remove the stale copy after a success) is
:func:`ops.reprocess.reprocess`, which the dashboard's Failed page calls too; this module parses the options and prints
a line per key and the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from image_compressor_cli import stackargs
from rich.console import Console

from ops import reprocess
from ops.stack import StackError

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``reprocess`` subcommand to ``commands`` (the subparsers of ``image-compressor``) and return it."""
    sub = commands.add_parser(
        "reprocess",
        help="run failed images through the deployed function again and report their new outcomes",
        description=(
            "Send each KEY's failed copy through the function again, as the dashboard's Reprocess button does: the "
            "upload's S3 event is replayed for the source version that failed (or, when the source object is gone, "
            "the failed copy is copied back to the source). Waits for each new outcome; after a success the stale "
            "failed copy is removed, after a new failure the fresh copy holds the new reason."
        ),
        epilog=(
            "Exit status: 0 when every key got its new outcome (a new failure included), 1 when a key could not be "
            "reprocessed or had no outcome within --wait, 2 when there is no stack. "
            'Front door: make reprocess KEYS="a.jpg b.jpg" [TARGET=local|aws]'
        ),
    )
    sub.add_argument("keys", nargs="+", metavar="KEY", help="key of a failed image (as in the failed bucket)")
    sub.add_argument(
        "--wait",
        type=float,
        default=reprocess.DEFAULT_WAIT_S,
        metavar="SECONDS",
        help=f"how long to wait for the new outcomes; 0 does not wait (default: {reprocess.DEFAULT_WAIT_S:.0f})",
    )
    stackargs.add_arguments(sub)
    sub.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    return sub


def run(args: argparse.Namespace) -> int:
    """Reprocess ``args.keys`` on ``args.target`` (:func:`ops.reprocess.reprocess`); print; return the exit code."""
    out = Console(file=sys.stderr if args.json else sys.stdout, highlight=False, soft_wrap=True)
    try:
        stack = stackargs.resolve(args, reprocess.NEEDED_OUTPUTS)
        summary = reprocess.reprocess(stack, args.keys, wait_s=max(0.0, args.wait), on_item=lambda i: _line(out, i))
    except StackError as exc:
        sys.stderr.write(f"image-compressor reprocess: error: {exc}\n")
        return EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    done = sum(summary.count(status) for status in ("compressed", "kept-original", "failed"))
    out.print(
        f"Summary: {len(summary.items)} key(s): {summary.count('compressed')} compressed, "
        f"{summary.count('kept-original')} kept-original, {summary.count('failed')} failed again, "
        f"{summary.count('pending')} pending, {summary.count('error')} not reprocessed",
        markup=False,
    )
    if summary.count("pending"):
        out.print(
            "Pending outcomes are on their way (the function runs asynchronously): look again with `make "
            "local-status` / the dashboard, or the dead-letter queue (`make redrive`) if the function kept failing.",
            markup=False,
        )
    return EXIT_OK if done == len(summary.items) else EXIT_INCOMPLETE


def _line(out: Console, item: reprocess.Item) -> None:
    if item.error is not None:
        out.print(f"  not reprocessed {item.key}: {item.error}", markup=False)
    elif item.result is None:
        out.print(f"  pending         {item.key}: no outcome yet", markup=False)
    elif item.result.status == "failed":
        out.print(f"  failed again    {item.key}: {item.result.reason or 'no reason recorded'}", markup=False)
    else:
        sizes = f"{item.result.input_bytes or 0:,} -> {item.result.output_bytes or 0:,} bytes"
        out.print(f"  {item.result.status:<15} {item.key}: {sizes}", markup=False)
