"""``image-compressor redrive``: the command line and terminal output of :mod:`ops.redrive` (``make redrive``).

The work (read the dead-letter queue, replay each event, delete its message once accepted) is
:func:`ops.redrive.redrive`; this module parses the options and prints a line per message and the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from image_compressor_cli import stackargs
from rich.console import Console

from ops import redrive
from ops.stack import OPERATION, StackError

EXIT_OK = 0
EXIT_LEFT = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``redrive`` subcommand to ``commands`` (the subparsers of ``image-compressor``) and return it."""
    sub = commands.add_parser(
        "redrive",
        help="replay every event in the dead-letter queue of a deployed stack through its function",
        description=(
            "Replay every event in the stack's dead-letter queue through the function (an asynchronous invoke with "
            "the original event) and delete each message once Lambda accepted its replay. Messages that are not a "
            "Lambda destination record or an S3 event stay in the queue, with the reason. The function is "
            "idempotent per event, so running this twice is harmless: nothing is written or notified twice."
        ),
        epilog="Exit status: 0 when the queue was emptied (or was empty), 1 when messages stay in it, 2 when the "
        "redrive cannot run (no stack, missing queue or function). Example: image-compressor redrive --target local",
    )
    stackargs.add_arguments(sub)
    sub.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return sub


def run(args: argparse.Namespace) -> int:
    """Redrive the dead-letter queue of ``args.target`` (:func:`ops.redrive.redrive`), report; return the exit code.

    Prints a line per message (on stderr with ``--json``) and a summary: found, replayed, left in the queue, with the
    reason for each message left. Returns 0 when nothing is left, 1 when messages stay, 2 when the redrive could not
    run (the error says what to do).
    """
    as_json = args.json
    out = Console(file=sys.stderr if as_json else sys.stdout, highlight=False, soft_wrap=True)
    try:
        stack = stackargs.resolve(args, redrive.NEEDED_OUTPUTS)
        depth = redrive.queue_depth(stack.client("sqs", OPERATION), stack.output("dlq_url"))
        out.print(
            f"Redriving {stack.output('dlq_url')} through {stack.output('function_name')} ({stack.target}, "
            f"{stack.region}), {depth} message(s) in the queue",
            markup=False,
        )

        def report(letter: redrive.DeadLetter, reason: str | None) -> None:
            keys = ", ".join(letter.keys) or "(no object)"
            if reason is None:
                out.print(f"  replayed {keys}", markup=False)
            else:
                out.print(f"  left     {letter.message_id}: {reason}", markup=False)

        summary = redrive.redrive_stack(stack, on_message=report)
    except (StackError, redrive.RedriveError) as exc:
        sys.stderr.write(f"image-compressor redrive: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; messages not yet replayed stay in the queue (run the redrive again)\n")
        return EXIT_INTERRUPTED
    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    out.print(
        f"Summary: {summary.found} found, {len(summary.replayed)} replayed (deleted from the queue), "
        f"{len(summary.left)} left in the queue",
        markup=False,
    )
    if summary.replayed:
        out.print(
            "The function processes the replayed events asynchronously: their outcomes and notifications follow "
            "within its usual time; a replay that fails again returns to the queue after the retries.",
            markup=False,
        )
    return EXIT_LEFT if summary.left else EXIT_OK
