"""The ``--target`` and ``--state-dir`` options every operations command shares, and the stack they name."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ops import stack as stacks


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """Add ``--target local|aws`` (default ``local``) and ``--state-dir DIR`` to the subcommand ``sub``."""
    sub.add_argument(
        "--target",
        default="local",
        metavar="T",
        help="local: the stack of `make local-up` (.local/stack.json); aws: the stack of `make deploy-aws` "
        "(terraform/envs/aws outputs, your AWS credentials) (default: local)",
    )
    sub.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the local state directory holding stack.json (default: .local/ or LOCALCLOUD_STATE_DIR)",
    )


def resolve(args: Any, required: Iterable[str]) -> stacks.Stack:
    """Return the stack ``args.target`` names (:func:`ops.stack.resolve`), refused when it lacks ``required`` outputs.

    Raises
    ------
    ops.stack.StackError
        When there is no such stack; the message says what to run.
    """
    return stacks.resolve(args.target, required=required, state_dir=args.state_dir)
