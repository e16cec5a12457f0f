"""Where an operations command acts: ``TARGET=local`` (the stack of ``make local-up``) or ``TARGET=aws``.

Backfill and redrive both take a target. :func:`resolve` turns its name into the stack's region, endpoint and
outputs, with one set of messages that say what to run when there is no stack; each command then builds its own
boto3 clients (its own timeouts and retries) from the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ops import defaults, procs, stackfile
from ops import terraform as tf

#: The target names every operations command accepts.
TARGETS = ("local", "aws")


class TargetError(RuntimeError):
    """The target cannot be used; the message says what to run."""


@dataclass(frozen=True, slots=True)
class StackTarget:
    """A stack an operations command talks to.

    Attributes
    ----------
    name : str
        ``local`` or ``aws``.
    region : str
        The stack's region.
    endpoint : str | None
        The local cloud's endpoint; ``None`` for AWS (boto3's own endpoints).
    outputs : dict[str, str]
        The stack's outputs as strings (null outputs left out).
    """

    name: str
    region: str
    endpoint: str | None
    outputs: dict[str, str]


def resolve(
    name: str,
    *,
    required: Iterable[str] = (),
    state_dir: Path | None = None,
    aws_root: Path = tf.AWS_ROOT,
) -> StackTarget:
    """Return the stack of target ``name``: the local stack file's (``local``) or the AWS root's outputs (``aws``).

    Parameters
    ----------
    name : str
        ``local`` or ``aws``.
    required : Iterable[str]
        Outputs the command needs; a stack without one of them is refused.
    state_dir : Path | None
        Folder of the local stack file (default: the project's ``.local``).
    aws_root : Path
        The AWS Terraform root whose outputs describe the deployed stack.

    Raises
    ------
    TargetError
        For an unknown target; when no local stack is recorded, its file cannot be read, or its cloud does not
        answer; when the AWS root was never applied or its outputs cannot be read; or when an output in
        ``required`` is missing. The message says what to run.
    """
    if name not in TARGETS:
        raise TargetError(f"unknown target {name!r}: use TARGET=local (the stack of `make local-up`) or TARGET=aws")
    if name == "local":
        directory = state_dir or stackfile.state_dir()
        try:
            state = stackfile.load(directory)
        except ValueError as exc:
            raise TargetError(str(exc)) from exc
        if state is None or not state.endpoint:
            raise TargetError(
                f"no local stack is running (no {directory / stackfile.STATE_FILE}): start one with `make local-up`, "
                "or use TARGET=aws for the deployed stack"
            )
        error = procs.probe_url(state.endpoint, timeout=1.5)
        if error is not None:
            raise TargetError(
                f"the {state.backend} local cloud at {state.endpoint} does not answer ({error.strerror or error}): "
                "start it with `make local-up` (`make local-status` shows what runs)"
            )
        outputs = stackfile.plain_outputs(state.outputs)
        region, endpoint = state.region or defaults.DEFAULT_REGION, state.endpoint
    else:
        try:
            outputs = stackfile.plain_outputs(tf.outputs(aws_root))
        except tf.TerraformError as exc:
            raise TargetError(f"cannot read the AWS stack's outputs: {exc}") from exc
        if not outputs:
            raise TargetError(
                f"no AWS stack: {aws_root} has no applied state; deploy it with `make deploy-aws` (state in S3: run "
                "`make deploy-aws BACKEND_CONFIG=...` once so this checkout reads it), or use TARGET=local"
            )
        region, endpoint = outputs.get("region") or defaults.DEFAULT_REGION, None
    missing = [output for output in required if not outputs.get(output)]
    if missing:
        raise TargetError(
            f"the {name} stack's outputs lack {', '.join(missing)}: apply it again "
            f"({'`make local-up`' if name == 'local' else '`make deploy-aws`'})"
        )
    return StackTarget(name, region, endpoint, outputs)
