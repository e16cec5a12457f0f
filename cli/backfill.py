"""``image-compressor backfill``: the command line and terminal output of :mod:`ops.backfill` (``make backfill``).

The work (scan, queue, wait) is :func:`ops.backfill.run`; this module parses the options, draws the progress bar
(rich, on stderr when it is a terminal) and prints the closing summary (a table, or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from image_compressor_cli import stackargs
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ops import backfill
from ops.stack import StackError

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
PHASES = {backfill.SCAN: "checking", backfill.QUEUE: "queuing", backfill.WAIT: "outcomes"}


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``backfill`` subcommand to ``commands`` (the subparsers of ``image-compressor``) and return it."""
    sub = commands.add_parser(
        "backfill",
        help="process the JPEGs already in the source bucket through the deployed function",
        description=(
            "Give every .jpg/.jpeg object (any case) already in the stack's source bucket, under --prefix, its outcome "
            "through the deployed function (destination or failed bucket, notification). Objects whose current "
            "version already has an outcome are skipped unless --force. Locally (and on AWS below "
            "--batch-threshold objects) the function is invoked asynchronously once per object and the command waits "
            "for the outcomes; on AWS from --batch-threshold objects on, one S3 Batch Operations job runs them."
        ),
        epilog=(
            "Exit status: 0 when every queued object got its outcome (failed images included), 1 when some are still "
            "pending or could not be queued, 2 on bad input (no stack, unknown prefix, empty bucket, wrong target). "
            "Front door: make backfill [PREFIX=...] [TARGET=local|aws] [FORCE=1] [DRY_RUN=1]"
        ),
    )
    sub.add_argument("--prefix", default="", metavar="P", help="only keys that start with P (default: the bucket)")
    sub.add_argument("--force", action="store_true", help="process objects that already have a current outcome too")
    sub.add_argument("--dry-run", action="store_true", help="only count what would be queued; invoke nothing")
    sub.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        metavar="N",
        help="function runs at once: objects sent without an outcome yet (default: the function's reserved "
        f"concurrency, {backfill.DEFAULT_RUNS} when it has none)",
    )
    sub.add_argument(
        "--batch-threshold",
        type=_positive,
        default=backfill.DEFAULT_BATCH_THRESHOLD,
        metavar="N",
        help="on AWS, from N objects on run one S3 Batch Operations job instead of one invoke per object "
        f"(default: {backfill.DEFAULT_BATCH_THRESHOLD})",
    )
    sub.add_argument(
        "--wait",
        type=float,
        default=backfill.DEFAULT_WAIT_S,
        metavar="SECONDS",
        help="how long to wait with no new outcome before stopping (what is in flight is then pending, the rest "
        f"not sent); 0 sends everything at once and does not wait (default: {backfill.DEFAULT_WAIT_S:.0f})",
    )
    stackargs.add_arguments(sub)
    sub.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    return sub


def run(args: argparse.Namespace) -> int:
    """Run the backfill the parsed ``args`` ask for; print the summary; return the exit code."""
    errors = Console(file=sys.stderr, highlight=False, soft_wrap=True)
    try:
        stack = stackargs.resolve(args, backfill.NEEDED_OUTPUTS)
        with _progress() as progress:
            summary = backfill.run(
                stack,
                prefix=args.prefix,
                force=args.force,
                dry_run=args.dry_run,
                concurrency=args.concurrency,
                batch_threshold=args.batch_threshold,
                wait_s=args.wait,
                progress=progress,
                progress_file=backfill.progress_path(args.target, args.state_dir),
            )
    except (StackError, backfill.BackfillError) as exc:
        errors.print(f"image-compressor backfill: error: {exc}", markup=False)
        return EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
    else:
        _print_summary(summary)
    return EXIT_INCOMPLETE if summary.pending or summary.not_queued else EXIT_OK


@contextmanager
def _progress() -> Iterator[backfill.Progress]:
    """Yield the progress callback: a rich bar per phase on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield lambda phase, done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(PHASES.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


def _print_summary(summary: backfill.Summary) -> None:
    console = Console(highlight=False, soft_wrap=True)
    where = f"s3://{summary.bucket}/{summary.prefix}"
    title = f"Backfill of {where} ({summary.target}{', dry run' if summary.dry_run else ''})"
    table = Table(title=title, title_justify="left")
    names = ("Found", "Skipped", "Queued", "Compressed", "Kept", "Failed", "Pending")
    for name in names:
        table.add_column(name, justify="right")
    values = (summary.found, summary.skipped, summary.queued, summary.compressed, summary.kept, summary.failed)
    table.add_row(*(str(v) for v in values), str(summary.pending))
    console.print(table)
    if summary.dry_run:
        console.print(f"Dry run: {summary.queued} objects would be queued; nothing was invoked.")
    if summary.job_id:
        console.print(
            f"S3 Batch Operations job {summary.job_id} runs the {summary.queued} objects. Follow it with\n"
            f"  aws s3control describe-job --account-id <account> --job-id {summary.job_id}\n"
            "Its completion report lands under reports/ in the stack's batch bucket.",
            markup=False,
        )
    elif summary.pending:
        console.print(
            f"{summary.pending} objects have no outcome yet: they may still be running (a large backlog, or "
            "Lambda retrying). Run the same backfill again later (objects with an outcome are skipped), or look "
            "at the dead-letter queue (`make redrive`).",
            markup=False,
        )
    for error in summary.errors:
        console.print(f"  {error}", markup=False)
    if summary.not_queued:
        console.print(f"{summary.not_queued} objects could not be queued; run the backfill again.", markup=False)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value
