"""The stack: where the pipeline runs, its outputs, and the one way to get a boto3 client for it.

A :class:`Stack` is what every operation (backfill, redrive, reprocess), the CLI, the bench, the tests and the
dashboard talk to. It is described either by the local stack file (``.local/stack.json``, written by
``make local-up``; :mod:`ops.stackfile` is its format) or by the AWS root's Terraform outputs (``make deploy-aws``).
:func:`resolve` finds it, with one set of rules and one set of messages that say what to run when there is none.

The words, once: a **target** is where the stack runs (``local`` or ``aws``); a **backend** is which local cloud runs
a local target (``embedded``, ``ministack``, ``localstack``; ``aws`` for the AWS target).

Clients: :meth:`Stack.client` returns a boto3 client for a service, with the retry and timeout :class:`Policy` its
caller names (:data:`INTERACTIVE` for a page that waits, :data:`OPERATION` for a command, :data:`BULK` for many
requests at once; the bench and the tests name their own). A local stack's
clients carry the local cloud's fixed credentials (``test``: the account's administrator, as on LocalStack), so a
user's real keys never reach it; the AWS stack's come from the environment or ``AWS_PROFILE``. Clients are made
once per stack, service and policy, and shared (boto3 clients are thread-safe). What their errors say is read in one
place too: :func:`error_code`, :func:`is_not_found`, :func:`head_or_none`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bx
from botocore.config import Config

from ops import defaults

#: The target names every operations command accepts.
TARGETS = ("local", "aws")
#: The backend of the AWS target (local targets name their local cloud).
AWS_BACKEND = "aws"
#: Human names of the backends, for the dashboard and the CLI.
LABELS = {"embedded": "Embedded local cloud", "ministack": "MiniStack", "localstack": "LocalStack", "aws": "AWS"}


class StackError(RuntimeError):
    """No usable stack: none recorded, its description unreadable, its cloud silent, or an output missing.

    The message says what to run.
    """


@dataclass(frozen=True, slots=True)
class Policy:
    """How a client retries and how long it waits (botocore's ``Config``), named for the kind of caller.

    Attributes
    ----------
    name : str
        The policy's name (for logs and reports).
    retries : int
        Retries of a failed call after its first attempt (botocore's ``max_attempts``: ``retries + 1`` attempts).
    mode : str
        botocore's retry mode: ``standard``, or ``adaptive`` (client-side rate limiting after throttles).
    connect_timeout, read_timeout : float
        Seconds to connect, and to wait for an answer.
    pool : int
        Connections kept per client (requests in flight at once without waiting for a connection).
    """

    name: str
    retries: int
    mode: str = "standard"
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    pool: int = 10

    def config(self, *, local: bool) -> Config:
        """Return the botocore ``Config`` of this policy.

        For a local endpoint, S3 path-style addressing; for AWS, ``AWS_ENDPOINT_URL`` and the ``endpoint_url`` of the
        AWS config are ignored, so a shell still set up for the local cloud cannot send AWS calls there.
        """
        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"max_attempts": self.retries, "mode": self.mode},
            max_pool_connections=self.pool,
            s3={"addressing_style": "path"} if local else None,
            ignore_configured_endpoint_urls=not local,
        )


#: A person waits on the answer (the dashboard): fail fast and say so.
INTERACTIVE = Policy("interactive", retries=2, connect_timeout=3.0)
#: A command acts on a few things (redrive, reprocess, deploy-aws's checks): retry transient errors a little.
OPERATION = Policy("operation", retries=3)
#: Many requests at once (backfill): a pool for them, and throttles absorbed by adaptive retries.
BULK = Policy("bulk", retries=5, mode="adaptive", pool=32)


@dataclass(frozen=True, slots=True)
class Stack:
    """A deployed stack: where it runs, its outputs, and (local targets) its processes.

    Attributes
    ----------
    target : str
        ``local`` or ``aws``.
    backend : str
        ``embedded``, ``ministack`` or ``localstack`` for a local target; ``aws`` for AWS.
    region : str
        The stack's region.
    endpoint : str | None
        The local cloud's endpoint (every client's ``endpoint_url``); ``None`` for AWS (boto3's own endpoints).
    outputs : Mapping[str, str]
        The stack's Terraform outputs as strings, null outputs left out.
    source : str
        Where the description came from (a stack file's path, or ``terraform output (<root>)``).
    stack_file : str | None
        The stack file it was read from (its folder holds the local state: snapshots, logs, progress files).
    profile : str | None
        ``AWS_PROFILE`` of the AWS target's clients (``None``: the environment's credentials).
    hot_reload_dir : str | None
        A local stack started with ``make local-up HOT_RELOAD=1``: the directory the function runs from live.
    server, dashboard : Mapping[str, Any] | None
        A local stack's processes as the stack file records them (``pid``, ``log``, the dashboard's ``url``).
    updated_at : str
        When the stack file was written (UTC, ISO 8601), empty for AWS.
    """

    target: str
    backend: str
    region: str
    endpoint: str | None = None
    outputs: Mapping[str, str] = field(default_factory=dict, hash=False)
    source: str = ""
    stack_file: str | None = None
    profile: str | None = None
    hot_reload_dir: str | None = None
    server: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)
    dashboard: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)
    updated_at: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """Human name of the backend, e.g. ``Embedded local cloud``."""
        return LABELS.get(self.backend, self.backend)

    @property
    def is_local(self) -> bool:
        """Whether the stack runs on a local cloud rather than real AWS."""
        return self.target == "local"

    @property
    def apply_command(self) -> str:
        """The command that (re)creates this stack: ``make local-up`` or ``make deploy-aws``."""
        return "make local-up" if self.is_local else "make deploy-aws"

    def output(self, name: str) -> str:
        """Return the output ``name``.

        Raises
        ------
        StackError
            When the stack has no value for it (the message names the description and says to apply again).
        """
        value = self.outputs.get(name)
        if not value:
            raise StackError(
                f"the {self.target} stack ({self.source or self.label}) has no output {name!r}: "
                f"apply it again with `{self.apply_command}`"
            )
        return value

    def require(self, names: Iterable[str]) -> Stack:
        """Return this stack when it has every output in ``names``; raise :class:`StackError` naming the missing."""
        missing = [name for name in names if not self.outputs.get(name)]
        if missing:
            raise StackError(
                f"the {self.target} stack's outputs lack {', '.join(missing)}: apply it again (`{self.apply_command}`)"
            )
        return self

    def client(self, service: str, policy: Policy = OPERATION) -> Any:
        """Return the boto3 client of ``service`` for this stack, with ``policy``'s retries and timeouts.

        One client per stack location (endpoint, region, profile), service and policy is made and then shared.

        Raises
        ------
        StackError
            When ``AWS_PROFILE`` names a profile that is not in the AWS config.
        """
        key = (self.endpoint, self.region, self.profile, self.is_local, service, policy)
        with _LOCK:
            found = _CLIENTS.get(key)
            if found is None:
                found = _CLIENTS[key] = self._session().client(
                    service, endpoint_url=self.endpoint, config=policy.config(local=self.endpoint is not None)
                )
        return found

    def _session(self) -> boto3.session.Session:
        if self.is_local:
            return boto3.session.Session(
                aws_access_key_id=defaults.LOCAL_CREDENTIAL,
                aws_secret_access_key=defaults.LOCAL_CREDENTIAL,
                region_name=self.region,
            )
        try:
            return boto3.session.Session(profile_name=self.profile, region_name=self.region)
        except bx.ProfileNotFound as exc:
            raise StackError(
                f"AWS_PROFILE={self.profile!r} is not in your AWS config: set AWS_PROFILE to a configured profile "
                "(`aws configure list-profiles`)"
            ) from exc

    def to_json(self) -> str:
        """Serialise to a JSON string (a stable cache key; :meth:`from_json` reads it back)."""
        data = asdict(self)
        data["outputs"] = dict(self.outputs)
        return json.dumps(data, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Stack:
        """Rebuild a stack from :meth:`to_json` output."""
        return cls(**json.loads(text))


_CLIENTS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


#: The error codes of an S3 object (or bucket) that is not there: HeadObject answers a bare 404.
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def error_code(exc: bx.ClientError) -> str:
    """Return the AWS error code of a client error (``""`` when the answer has none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: bx.ClientError) -> bool:
    """Return True when ``exc`` says the S3 object or bucket is not there (:data:`NOT_FOUND_CODES`)."""
    return error_code(exc) in NOT_FOUND_CODES


def head_or_none(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """Return S3 ``HeadObject`` of ``bucket``/``key``, or ``None`` when there is no such object (other errors raise)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except bx.ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def clear_clients() -> None:
    """Forget the shared clients, so the next :meth:`Stack.client` makes new ones (new credentials, a new mock)."""
    with _LOCK:
        _CLIENTS.clear()


# ---------------------------------------------------------------------------------------------------------------------
# Finding the stack
# ---------------------------------------------------------------------------------------------------------------------


def resolve(
    target: str | None = None,
    *,
    required: Iterable[str] = (),
    state_dir: Path | None = None,
    stack_file: Path | None = None,
    aws_root: Path | None = None,
    env: Mapping[str, str] | None = None,
    probe: bool = True,
) -> Stack:
    """Return the stack of ``target``: the local stack file's (``local``) or the AWS root's outputs (``aws``).

    Parameters
    ----------
    target : str | None
        ``local``, ``aws``, or ``None``: the local stack when its file exists, else the AWS stack (the dashboard).
    required : Iterable[str]
        Outputs the caller needs; a stack without one of them is refused.
    state_dir : Path | None
        Folder of the local stack file (default: ``LOCALCLOUD_STATE_DIR`` or the project's ``.local``).
    stack_file : Path | None
        A stack file to read instead (the dashboard's ``DASHBOARD_STACK_FILE``); it must exist.
    aws_root : Path | None
        The AWS Terraform root whose outputs describe the deployed stack (default ``terraform/envs/aws``).
    env : Mapping[str, str] | None
        The environment (``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``); default ``os.environ``.
    probe : bool
        Whether a local stack's endpoint must accept a connection (1.5 s), so that a stopped cloud is named here
        rather than after boto3's retries.

    Region: a local stack's is in its file; the AWS stack's is the root's ``region`` output, else ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION``, else the profile's, else ``eu-west-1``.

    Raises
    ------
    StackError
        For an unknown target; when no local stack is recorded, its file cannot be read or its cloud does not answer;
        when the AWS root was never applied or its outputs cannot be read; or when an output in ``required`` is
        missing. The message says what to run.
    """
    from ops import procs, stackfile  # stackfile's reader builds Stacks: imported here, not at the top
    from ops import terraform as tf

    env = os.environ if env is None else env
    if target not in (None, *TARGETS):
        raise StackError(f"unknown target {target!r}: use TARGET=local (the stack of `make local-up`) or TARGET=aws")
    if stack_file is not None:
        if not stack_file.is_file():
            raise StackError(f"{stack_file} does not exist: start a stack with `make local-up`, or fix the path")
        stack = read_stack_file(stack_file, env)
    else:
        local_file = (state_dir or stackfile.state_dir(env=env)) / stackfile.STATE_FILE
        if target == "local" or (target is None and local_file.is_file()):
            if not local_file.is_file():
                raise StackError(
                    f"no local stack is running (no {local_file}): start one with `make local-up`, "
                    "or use TARGET=aws for the deployed stack"
                )
            stack = read_stack_file(local_file, env)
        else:
            stack = _aws_stack(aws_root or tf.AWS_ROOT, env, explicit=target == "aws")
    if stack.is_local and probe:
        error = procs.probe_url(stack.endpoint or "", timeout=1.5)
        if error is not None:
            raise StackError(
                f"the {stack.backend} local cloud at {stack.endpoint} does not answer ({error.strerror or error}): "
                "start it with `make local-up` (`make local-status` shows what runs)"
            )
    return stack.require(required)


def read_stack_file(path: Path, env: Mapping[str, str] | None = None) -> Stack:
    """Return the stack a stack file describes (:func:`ops.stackfile.read`, the one parser of the format).

    A file with an endpoint is a local stack; one without describes an AWS stack (its clients use ``AWS_PROFILE``
    from ``env``, default ``os.environ``).

    Raises
    ------
    StackError
        When the file cannot be read or is not a stack file of this version (the message names the file and the fix).
    """
    from ops import stackfile

    env = os.environ if env is None else env
    try:
        stack = stackfile.read(path)
    except (OSError, ValueError) as exc:
        raise StackError(str(exc)) from exc
    if stack.is_local:
        return stack if stack.region else replace(stack, region=defaults.DEFAULT_REGION)
    return replace(stack, region=stack.region or aws_region(env), profile=env.get("AWS_PROFILE") or None)


def _aws_stack(root: Path, env: Mapping[str, str], *, explicit: bool) -> Stack:
    from ops import stackfile
    from ops import terraform as tf

    try:
        outputs = stackfile.plain_outputs(tf.outputs(root)) if root.is_dir() else {}
    except tf.TerraformError as exc:
        raise StackError(f"cannot read the AWS stack's outputs ({root}): {exc}; run `make deploy-aws`") from exc
    if not outputs:
        if explicit:
            raise StackError(
                f"no AWS stack: {root} has no applied state; deploy it with `make deploy-aws` (state in S3: run "
                "`make deploy-aws BACKEND_CONFIG=...` once so this checkout reads it), or use TARGET=local"
            )
        raise StackError(
            "no stack found: start the local one with `make local-up` (it writes .local/stack.json), or deploy to "
            "AWS with `make deploy-aws`"
        )
    profile = env.get("AWS_PROFILE") or None
    return Stack(
        target="aws",
        backend=AWS_BACKEND,
        region=outputs.get("region") or aws_region(env),
        endpoint=None,
        outputs=outputs,
        source=f"terraform output ({root.relative_to(defaults.ROOT) if root.is_relative_to(defaults.ROOT) else root})",
        profile=profile,
    )


def aws_region(env: Mapping[str, str] | None = None) -> str:
    """Return ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the profile's region, else ``eu-west-1``."""
    env = os.environ if env is None else env
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        return region
    try:
        region = boto3.session.Session(profile_name=env.get("AWS_PROFILE") or None).region_name
    except bx.BotoCoreError:
        region = None
    return region or defaults.DEFAULT_REGION
