"""``image-compressor iam-report``: the command line and terminal output of :mod:`ops.iamreport`.

``make iam-report`` runs it. The work (the function's role, its identity policies, the embedded cloud's record of
the role's calls, grants matched to calls) is :func:`ops.iamreport.report`; this module parses the options, prints
the report (text, or ``--json``) and, with ``--clear``, clears the record after it so the next report covers only
what runs after.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from image_compressor_cli import stackargs

from ops import iamrecord, iamreport
from ops.stack import StackError

EXIT_OK = 0
EXIT_USAGE = 2


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``iam-report`` subcommand to ``commands`` (the subparsers of ``image-compressor``) and return it."""
    sub = commands.add_parser(
        "iam-report",
        help="what the function's role grants against what the function really used during a run on the local cloud",
        description=(
            "Read the function's execution role (Lambda GetFunctionConfiguration), its identity policies (IAM: inline "
            "and attached), and the embedded local cloud's record of every call the role made; print each granted "
            "action and resource with the calls that fell under it, flag the grants never used during this run, and "
            "list the role's denied calls with the reason. A run is what the local cloud counted since it started or "
            "since the record was cleared (--clear)."
        ),
        epilog=(
            "Exit status: 0 with a report; 2 with what to do when there is none (the stack is not the embedded local "
            "cloud, the cloud is down, IAM is off there). Front door: make iam-report [TARGET=local|aws]"
        ),
    )
    stackargs.add_arguments(sub)
    sub.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    sub.add_argument(
        "--clear",
        action="store_true",
        help="after the report, clear the local cloud's record (denials and counted calls): the next run starts at 0",
    )
    return sub


def run(args: argparse.Namespace) -> int:
    """Make the report of ``args.target``'s function (:func:`ops.iamreport.report`); print it; return the exit code."""
    try:
        stack = stackargs.resolve(args, iamreport.NEEDED_OUTPUTS)
        found = iamreport.report(stack)
        if args.clear:
            iamrecord.clear(stack)
    except (StackError, iamreport.ReportError, iamrecord.RecordError) as exc:
        sys.stderr.write(f"image-compressor iam-report: error: {exc}\n")
        return EXIT_USAGE
    if args.json:
        sys.stdout.write(json.dumps(found.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(iamreport.render(found) + "\n")
        if args.clear:
            sys.stdout.write("Cleared the local cloud's IAM record: the next report counts from now.\n")
    return EXIT_OK
