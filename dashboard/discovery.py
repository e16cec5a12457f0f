"""Find the stack the dashboard shows (:func:`ops.stack.resolve`), and where the dashboard keeps that stack's state.

The stack is an :class:`ops.stack.Stack`: a local stack file (``.local/stack.json`` from ``make local-up``, or the file
``DASHBOARD_STACK_FILE`` names) or the AWS root's Terraform outputs (``make deploy-aws``). ``DASHBOARD_TARGET=aws``
skips the local file, ``DASHBOARD_TARGET=local`` skips Terraform. Every boto3 client comes from the stack
(:meth:`ops.stack.Stack.client`); nothing here branches on the target otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dashboard.errors import StackNotFoundError
from ops import defaults, stackfile
from ops import terraform as tf
from ops.stack import Stack, StackError, resolve

REPO_ROOT = defaults.ROOT
STACK_FILE_ENV = defaults.DASHBOARD_STACK_FILE_ENV
STATE_DIR_ENV = defaults.DASHBOARD_STATE_DIR_ENV
TARGET_ENV = "DASHBOARD_TARGET"
AWS_ENV_DIR = tf.AWS_ROOT.relative_to(REPO_ROOT)


def find_stack(env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> Stack:
    """Find the stack the dashboard should show.

    Order: the file named by ``DASHBOARD_STACK_FILE``; else ``stack.json`` in ``LOCALCLOUD_STATE_DIR`` or
    ``<root>/.local/`` (written by ``make local-up``); else the Terraform outputs of ``terraform/envs/aws``
    (written by ``make deploy-aws``). The stack must have every output of :data:`ops.stackfile.REQUIRED_OUTPUTS`.
    Whether its cloud answers is the caller's check (the sidebar says so in its own words).

    Raises
    ------
    StackNotFoundError
        When no description is found, the one found is unreadable, or it lacks outputs; the message says what to do.
    """
    env = os.environ if env is None else env
    explicit = env.get(STACK_FILE_ENV, "").strip()
    stack_file = Path(explicit).expanduser() if explicit else None
    if stack_file is not None and not stack_file.is_file():
        raise StackNotFoundError(
            f"{STACK_FILE_ENV} points to {stack_file}, which does not exist. "
            f"Fix the path, or unset {STACK_FILE_ENV} to use .local/stack.json from `make local-up`."
        )
    wanted = "" if stack_file else env.get(TARGET_ENV, "").strip().lower()
    if wanted not in {"", "local", "aws"}:
        raise StackNotFoundError(f"{TARGET_ENV} must be 'local' or 'aws', got {wanted!r}.")
    try:
        return resolve(
            wanted or None,
            required=stackfile.REQUIRED_OUTPUTS,
            state_dir=stackfile.state_dir(root, env),
            stack_file=stack_file,
            aws_root=root / AWS_ENV_DIR,
            env=env,
            probe=False,
        )
    except StackError as exc:
        text = str(exc)
        raise StackNotFoundError(f"{text[:1].upper()}{text[1:]}. Then reload this page.") from exc


def state_dir(stack: Stack, env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> Path:
    """Return the dashboard's state directory for ``stack`` (its persisted notifications, the backfill progress).

    ``DASHBOARD_STATE_DIR`` when set; else a stack file's own directory; else (the AWS root's outputs) ``.local/aws``.
    """
    env = os.environ if env is None else env
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    if stack.stack_file:
        return Path(stack.stack_file).parent
    return stackfile.state_dir(root, env) / "aws"


def stack_signature(env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> str:
    """Change detector for the stack description: the settings that choose it plus its files' modification times."""
    env = os.environ if env is None else env
    parts = [env.get(name, "") for name in (STACK_FILE_ENV, TARGET_ENV, stackfile.STATE_DIR_ENV)]
    for path in (
        Path(env.get(STACK_FILE_ENV) or stackfile.state_dir(root, env) / stackfile.STATE_FILE),
        root / AWS_ENV_DIR / "terraform.tfstate",
        root / AWS_ENV_DIR / ".terraform" / "terraform.tfstate",
    ):
        try:
            parts.append(f"{path}:{path.stat().st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:-")
    return "|".join(parts)
