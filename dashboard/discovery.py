"""Find the stack the dashboard shows: a stack file (:mod:`ops.stackfile`) or the AWS root's Terraform outputs.

The stack is described by its Terraform outputs. Local targets (embedded, LocalStack) write them with the endpoint to
``.local/stack.json`` (``make local-up``); the AWS target is read with ``terraform output -json`` in
``terraform/envs/aws`` (through :mod:`ops.terraform`). Every boto3 client gets the endpoint from that description
only; nothing here branches on the target otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import boto3
import botocore.exceptions as bx

from dashboard.errors import StackNotFoundError
from ops import defaults, stackfile
from ops import terraform as tf

REPO_ROOT = defaults.ROOT
STACK_FILE_ENV = defaults.DASHBOARD_STACK_FILE_ENV
STATE_DIR_ENV = defaults.DASHBOARD_STATE_DIR_ENV
TARGET_ENV = "DASHBOARD_TARGET"
AWS_ENV_DIR = tf.AWS_ROOT.relative_to(REPO_ROOT)
TARGET_LABELS = {"embedded": "Embedded local cloud", "ministack": "MiniStack", "localstack": "LocalStack", "aws": "AWS"}


@dataclass(frozen=True)
class Stack:
    """Where the pipeline runs and what its resources are called.

    Attributes
    ----------
    target : str
        ``embedded``, ``localstack`` or ``aws``.
    endpoint : str | None
        Endpoint URL for every AWS API (local targets); ``None`` means the real AWS endpoints.
    region : str
        AWS region of the stack.
    outputs : dict[str, str]
        The Terraform outputs (``source_bucket``, ``destination_bucket``, ...).
    source : str
        Where the description came from (a file path or ``terraform output``), for the sidebar.
    state_dir : str
        Directory for the dashboard's own state (the persisted notifications).
    profile : str | None
        ``AWS_PROFILE`` used for the AWS target.
    hot_reload_dir : str | None
        Local targets started with ``make local-up HOT_RELOAD=1``: the directory the function runs from live.
    """

    target: str
    endpoint: str | None
    region: str
    outputs: dict[str, str] = field(hash=False)
    source: str
    state_dir: str
    profile: str | None = None
    hot_reload_dir: str | None = None

    @property
    def label(self) -> str:
        """Human name of the target, e.g. ``Embedded local cloud``."""
        return TARGET_LABELS.get(self.target, self.target)

    @property
    def is_local(self) -> bool:
        """Whether the stack runs on a local endpoint rather than real AWS."""
        return self.endpoint is not None

    def output(self, name: str) -> str:
        """Return the Terraform output ``name``; raise :class:`StackNotFoundError` naming the source if it is absent."""
        value = self.outputs.get(name)
        if not value:
            raise StackNotFoundError(
                f"The stack description ({self.source}) has no output '{name}'. "
                "Re-apply the stack (`make local-up` or `make deploy-aws`) so every output is written."
            )
        return value

    def to_json(self) -> str:
        """Serialise to a JSON string (used as a stable cache key)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Stack:
        """Rebuild a stack from :meth:`to_json` output."""
        return cls(**json.loads(text))


def find_stack(env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> Stack:
    """Find the stack the dashboard should show.

    Order: the file named by ``DASHBOARD_STACK_FILE``; else ``stack.json`` in ``LOCALCLOUD_STATE_DIR`` or
    ``<root>/.local/`` (written by ``make local-up``); else the Terraform outputs of ``terraform/envs/aws``
    (written by ``make deploy-aws``). ``DASHBOARD_TARGET=aws`` skips the local file, ``DASHBOARD_TARGET=local``
    skips Terraform.

    Raises
    ------
    StackNotFoundError
        When no description is found or the one found is unreadable; the message says how to create one.
    """
    env = os.environ if env is None else env
    explicit = env.get(STACK_FILE_ENV, "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise StackNotFoundError(
                f"{STACK_FILE_ENV} points to {path}, which does not exist. "
                f"Fix the path, or unset {STACK_FILE_ENV} to use .local/stack.json from `make local-up`."
            )
        return load_stack_file(path, env)
    wanted = env.get(TARGET_ENV, "").strip().lower()
    if wanted not in {"", "local", "aws"}:
        raise StackNotFoundError(f"{TARGET_ENV} must be 'local' or 'aws', got {wanted!r}.")
    local_file = local_stack_file(env, root)
    if wanted != "aws" and local_file.is_file():
        return load_stack_file(local_file, env)
    if wanted == "local":
        raise StackNotFoundError(
            f"No local stack: {local_file} does not exist. Start it with `make local-up`, then reload this page."
        )
    outputs = terraform_outputs(root / AWS_ENV_DIR)
    if outputs:
        return Stack(
            target="aws",
            endpoint=None,
            region=aws_region(env),
            outputs=outputs,
            source=f"terraform output ({AWS_ENV_DIR})",
            state_dir=str(Path(env.get(STATE_DIR_ENV) or root / ".local" / "aws")),
            profile=env.get("AWS_PROFILE") or None,
        )
    raise StackNotFoundError(
        "No stack found. Start the local one with `make local-up` (it writes .local/stack.json), "
        "deploy to AWS with `make deploy-aws`, or set DASHBOARD_STACK_FILE to a stack description; then reload."
    )


def local_stack_file(env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> Path:
    """Return where ``make local-up`` writes the stack file (in ``LOCALCLOUD_STATE_DIR`` or ``.local/``)."""
    return stackfile.state_dir(root, env) / stackfile.STATE_FILE


def load_stack_file(path: Path, env: Mapping[str, str] | None = None) -> Stack:
    """Read a stack file (:mod:`ops.stackfile`, the one parser of the format) into a :class:`Stack`.

    The dashboard's state directory is ``DASHBOARD_STATE_DIR`` when set, else the file's own directory.

    Raises
    ------
    StackNotFoundError
        When the file is not a stack file or lacks outputs; the message names the file and the fix.
    """
    env = os.environ if env is None else env
    try:
        current = stackfile.read(path)
    except (OSError, ValueError) as exc:
        raise StackNotFoundError(f"Cannot use the stack description {path}: {exc}") from exc
    missing = stackfile.missing_outputs(current.outputs)
    if missing:
        raise StackNotFoundError(
            f"{path} lacks the outputs {', '.join(missing)}. Re-apply the stack with `make local-up`."
        )
    endpoint = current.endpoint or None
    return Stack(
        target=current.backend or "embedded",
        endpoint=endpoint,
        region=current.region or aws_region(env),
        outputs=stackfile.plain_outputs(current.outputs),
        source=str(path),
        state_dir=str(Path(env.get(STATE_DIR_ENV) or path.parent)),
        profile=None if endpoint else (env.get("AWS_PROFILE") or None),
        hot_reload_dir=current.hot_reload_dir,
    )


def terraform_outputs(env_dir: Path) -> dict[str, str]:
    """Return the Terraform outputs of ``env_dir`` (:mod:`ops.terraform`) as plain values, ``{}`` when unapplied.

    Raises
    ------
    StackNotFoundError
        When Terraform is installed but reading the outputs fails.
    """
    if not env_dir.is_dir() or shutil.which("terraform") is None:
        return {}
    try:
        return stackfile.plain_outputs(tf.outputs(env_dir))
    except tf.TerraformError as exc:
        raise StackNotFoundError(
            f"Reading the Terraform outputs of {env_dir} failed: {exc}. Run `make deploy-aws` and reload."
        ) from exc


def aws_region(env: Mapping[str, str]) -> str:
    """Return the region from ``AWS_REGION``/``AWS_DEFAULT_REGION``, else the profile's, else ``eu-west-1``."""
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        return region
    try:
        region = boto3.session.Session(profile_name=env.get("AWS_PROFILE") or None).region_name
    except bx.BotoCoreError:
        region = None
    return region or defaults.DEFAULT_REGION


def stack_signature(env: Mapping[str, str] | None = None, root: Path = REPO_ROOT) -> str:
    """Change detector for the stack description: the settings that choose it plus its files' modification times."""
    env = os.environ if env is None else env
    parts = [env.get(name, "") for name in (STACK_FILE_ENV, TARGET_ENV, stackfile.STATE_DIR_ENV)]
    for path in (
        Path(env.get(STACK_FILE_ENV) or local_stack_file(env, root)),
        root / AWS_ENV_DIR / "terraform.tfstate",
        root / AWS_ENV_DIR / ".terraform" / "terraform.tfstate",
    ):
        try:
            parts.append(f"{path}:{path.stat().st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:-")
    return "|".join(parts)
