"""Find the deployed stack and talk to its AWS APIs: the dashboard's data access (no Streamlit in here).

The stack is described by its Terraform outputs. Local targets (embedded, LocalStack) write them with the endpoint to
``.local/stack.json``; the AWS target is read with ``terraform output -json`` in ``terraform/envs/aws``. Every boto3
client gets the endpoint from that description only; nothing here branches on the target otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bx
from botocore.config import Config
from image_compressor.result import STATUSES, MetadataKey, Status, StoredResult, read_metadata, unquote_etag

from localcloud import state, tf

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_FILE_ENV = "DASHBOARD_STACK_FILE"
TARGET_ENV = "DASHBOARD_TARGET"
STATE_DIR_ENV = "DASHBOARD_STATE_DIR"
DEFAULT_STACK_FILE = Path(".local") / "stack.json"
AWS_ENV_DIR = Path("terraform") / "envs" / "aws"
DEFAULT_REGION = "eu-west-1"
#: The stack outputs (the contract in DESIGN.md), as the local cloud records them.
OUTPUT_NAMES = state.REQUIRED_OUTPUTS
#: Outputs a usable stack description must have; ``notifications_queue_url`` is optional (null without a queue).
REQUIRED_OUTPUTS = tuple(name for name in OUTPUT_NAMES if name != "notifications_queue_url")
TARGET_LABELS = {"embedded": "Embedded local cloud", "localstack": "LocalStack", "aws": "AWS"}


class DashboardError(Exception):
    """A problem the user can fix; the message says what happened and what to do next."""


class StackNotFoundError(DashboardError):
    """No stack description was found, or the one found is unusable."""


class StackDownError(DashboardError):
    """The stack's endpoint does not answer or refuses our credentials."""


# --------------------------------------------------------------------------------------------------------------------
# Finding the stack
# --------------------------------------------------------------------------------------------------------------------


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
    """

    target: str
    endpoint: str | None
    region: str
    outputs: dict[str, str] = field(hash=False)
    source: str
    state_dir: str
    profile: str | None = None

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
    local_dir = env.get("LOCALCLOUD_STATE_DIR", "").strip()
    local_file = Path(local_dir) / DEFAULT_STACK_FILE.name if local_dir else root / DEFAULT_STACK_FILE
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


def load_stack_file(path: Path, env: Mapping[str, str] | None = None) -> Stack:
    """Read a stack description written by the local cloud (``backend``, ``endpoint``, ``region``, ``outputs``).

    Outputs may be plain values or Terraform's ``{"value": ...}`` objects. The dashboard's state directory is
    ``DASHBOARD_STATE_DIR`` when set, else the file's own directory.

    Raises
    ------
    StackNotFoundError
        When the file is not JSON or lacks the outputs; the message names the file and the fix.
    """
    env = os.environ if env is None else env
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StackNotFoundError(
            f"Cannot read the stack description {path}: {exc}. Re-create it with `make local-up`."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("outputs"), dict):
        raise StackNotFoundError(f"{path} has no 'outputs' object. Re-create it with `make local-up`.")
    outputs = _plain_outputs(data["outputs"])
    missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise StackNotFoundError(
            f"{path} lacks the outputs {', '.join(missing)}. Re-apply the stack with `make local-up`."
        )
    backend = str(data.get("backend") or data.get("target") or "embedded")
    endpoint = data.get("endpoint") or None
    region = str(data.get("region") or aws_region(env))
    return Stack(
        target=backend,
        endpoint=str(endpoint) if endpoint else None,
        region=region,
        outputs=outputs,
        source=str(path),
        state_dir=str(Path(env.get(STATE_DIR_ENV) or path.parent)),
        profile=None if endpoint else (env.get("AWS_PROFILE") or None),
    )


def terraform_outputs(env_dir: Path) -> dict[str, str]:
    """Return the Terraform outputs of ``env_dir`` (through ``localcloud.tf``) as plain values, ``{}`` when unapplied.

    Raises
    ------
    StackNotFoundError
        When Terraform is installed but reading the outputs fails.
    """
    if not env_dir.is_dir() or shutil.which("terraform") is None:
        return {}
    try:
        return _plain_outputs(tf.outputs(env_dir))
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
    return region or DEFAULT_REGION


def _plain_outputs(raw: Mapping[str, Any]) -> dict[str, str]:
    plain: dict[str, str] = {}
    for name, value in raw.items():
        if isinstance(value, dict) and "value" in value:
            value = value["value"]
        if value is not None:
            plain[str(name)] = str(value)
    return plain


# --------------------------------------------------------------------------------------------------------------------
# Results of the pipeline
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImageResult(StoredResult):
    """One processed object as the pipeline left it (destination or failed copy): its result record and the object.

    The record's fields (``status``, ``input_bytes``, ``output_bytes``, ``ms``, ``reason``, ...) come from
    :class:`image_compressor.result.StoredResult`, read from the object's metadata.

    Attributes
    ----------
    key : str
        Object key (the same in source, destination and failed).
    bucket : str
        Bucket holding the result object.
    object_bytes : int
        Size of the result object itself.
    last_modified : datetime
        When the result object was written (UTC).
    """

    key: str
    bucket: str
    object_bytes: int
    last_modified: datetime

    def row(self) -> dict[str, Any]:
        """Return a flat dict for tables, in the result record's words: key, status, sizes, saved %, ms, time."""
        return {
            "key": self.key,
            "status": self.status,
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "saved_pct": None if self.status == Status.FAILED else round(self.saved_ratio * 100, 1),
            "ms": self.ms,
            "width": self.width,
            "height": self.height,
            "quality": self.quality,
            "time": self.last_modified,
            "reason": self.reason,
        }


def result_from_head(bucket: str, key: str, head: Mapping[str, Any], *, failed_copy: bool) -> ImageResult:
    """Build an :class:`ImageResult` from an S3 ``HeadObject`` response and the metadata the function wrote."""
    size = int(head.get("ContentLength") or 0)
    record = read_metadata(head.get("Metadata") or {}, object_bytes=size, failed_copy=failed_copy)
    modified = head.get("LastModified") or datetime.now(UTC)
    return ImageResult(
        **{name: getattr(record, name) for name in StoredResult.__dataclass_fields__},
        key=key,
        bucket=bucket,
        object_bytes=size,
        last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
    )


@dataclass(frozen=True)
class ServiceHealth:
    """Whether one service of the stack answers.

    Attributes
    ----------
    service : str
        Short name shown in the sidebar (``S3``, ``SNS``, ...).
    ok : bool
        The check call succeeded.
    detail : str
        A short figure (queue depth, function state) or, when not ok, the problem in one sentence.
    """

    service: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class StoredObject:
    """A listed S3 object: key, size, ETag (unquoted) and time."""

    key: str
    size: int
    etag: str
    last_modified: datetime


class Cloud:
    """boto3 clients for one stack plus the operations the dashboard needs.

    Parameters
    ----------
    stack : Stack
        The stack to talk to; its ``endpoint`` (if any) goes to every client as ``endpoint_url``.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        if stack.is_local:
            # moto and LocalStack accept any credentials; fixed ones keep a user's real keys out of the local cloud.
            session = boto3.session.Session(
                aws_access_key_id="test", aws_secret_access_key="test", region_name=stack.region
            )
            config = Config(
                connect_timeout=3,
                read_timeout=60,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            )
        else:
            try:
                session = boto3.session.Session(profile_name=stack.profile, region_name=stack.region)
            except bx.ProfileNotFound as exc:
                raise StackDownError(
                    f"AWS_PROFILE={stack.profile!r} is not in your AWS config. "
                    "Set AWS_PROFILE to a configured profile (`aws configure list-profiles`)."
                ) from exc
            config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"})
        self._clients = {
            name: session.client(name, endpoint_url=stack.endpoint, config=config)
            for name in ("s3", "sns", "sqs", "lambda", "logs")
        }

    def client(self, name: str) -> Any:
        """Return the boto3 client for ``name`` (``s3``, ``sns``, ``sqs``, ``lambda`` or ``logs``)."""
        return self._clients[name]

    # -- reachability -------------------------------------------------------------------------------------------------

    def check_reachable(self) -> None:
        """Fail fast when a local endpoint has no listener (boto3 would retry for seconds).

        Raises
        ------
        StackDownError
            When nothing accepts TCP connections at the stack's endpoint.
        """
        if not self.stack.endpoint:
            return
        parts = urlsplit(self.stack.endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "localhost", port), timeout=1.5):
                pass
        except OSError as exc:
            raise StackDownError(
                f"The {self.stack.label} at {self.stack.endpoint} is not answering ({exc.strerror or exc}). "
                "Start it with `make local-up` (or check `make local-status`), then reload this page."
            ) from exc

    def health(self) -> list[ServiceHealth]:
        """Check each service of the stack with one cheap call; never raises for a failing service."""
        out = self.stack.outputs
        checks: list[tuple[str, Callable[[], str]]] = [
            ("S3 source", partial(self._bucket_text, out.get("source_bucket", ""))),
            ("S3 destination", partial(self._bucket_text, out.get("destination_bucket", ""))),
            ("S3 failed", partial(self._bucket_text, out.get("failed_bucket", ""))),
            ("SNS", self._topic_text),
            ("SQS", self._queue_depth_text),
            ("Lambda", self._function_state_text),
            ("Logs", self._log_group_text),
        ]
        results = []
        for name, check in checks:
            try:
                results.append(ServiceHealth(name, True, check()))
            except Exception as exc:  # health is a display: every failure is a red light
                results.append(ServiceHealth(name, False, explain(exc, self.stack)))
        return results

    def _bucket_text(self, bucket: str) -> str:
        self.client("s3").head_bucket(Bucket=bucket)
        return ""

    def _topic_text(self) -> str:
        self.client("sns").get_topic_attributes(TopicArn=self.stack.output("sns_topic_arn"))
        return ""

    def _queue_depth_text(self) -> str:
        sqs = self.client("sqs")
        parts = []
        queue = self.stack.outputs.get("notifications_queue_url")
        if queue:
            attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
            parts.append(f"{attrs['Attributes'].get('ApproximateNumberOfMessages', '?')} unread")
        else:
            parts.append("no inspection queue")
        dlq = sqs.get_queue_attributes(
            QueueUrl=self.stack.output("dlq_url"), AttributeNames=["ApproximateNumberOfMessages"]
        )
        parts.append(f"{dlq['Attributes'].get('ApproximateNumberOfMessages', '?')} in the DLQ")
        return ", ".join(parts)

    def _function_state_text(self) -> str:
        conf = self.function_configuration()
        return f"{conf.get('State', 'Active')}, {conf.get('MemorySize', '?')} MB"

    def _log_group_text(self) -> str:
        name = self.stack.output("log_group_name")
        groups = self.client("logs").describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if not any(g.get("logGroupName") == name for g in groups):
            raise DashboardError(f"log group {name} does not exist yet")
        return ""

    def function_configuration(self) -> dict[str, Any]:
        """Return Lambda ``GetFunctionConfiguration`` for the stack's function."""
        return self.client("lambda").get_function_configuration(FunctionName=self.stack.output("function_name"))

    # -- objects ------------------------------------------------------------------------------------------------------

    def upload(self, key: str, data: bytes, progress: Callable[[int], None] | None = None) -> str:
        """Put ``data`` into the source bucket under ``key`` and return the new object's ETag (unquoted).

        ``progress`` is called with the number of bytes sent so far as the upload proceeds.
        """
        import io

        from boto3.s3.transfer import TransferConfig

        sent = 0

        def _tick(n: int) -> None:
            nonlocal sent
            sent += n
            if progress is not None:
                progress(min(sent, len(data)))

        bucket = self.stack.output("source_bucket")
        self.client("s3").upload_fileobj(
            io.BytesIO(data),
            bucket,
            key,
            ExtraArgs={"ContentType": "image/jpeg"},
            Callback=_tick,
            Config=TransferConfig(multipart_threshold=64 * 1024 * 1024, use_threads=False),
        )
        head = self.client("s3").head_object(Bucket=bucket, Key=key)
        return unquote_etag(head["ETag"]) or ""

    def head_result(self, bucket: str, key: str) -> ImageResult | None:
        """Return the result stored at ``bucket``/``key``, or ``None`` when there is no such object."""
        try:
            head = self.client("s3").head_object(Bucket=bucket, Key=key)
        except bx.ClientError as exc:
            if _is_not_found(exc):
                return None
            raise
        return result_from_head(bucket, key, head, failed_copy=bucket == self.stack.outputs.get("failed_bucket"))

    def find_result(self, key: str, source_etag: str | None = None) -> ImageResult | None:
        """Return the pipeline's result for ``key``: the destination object or the failed copy, whichever is newer.

        With ``source_etag``, only a result whose ``source-etag`` metadata names that exact source object counts, so
        an older result for the same key (or a failed copy being retried) is not mistaken for the new one.
        """
        etag = unquote_etag(source_etag)
        found = [
            result
            for result in (
                self.head_result(self.stack.output("destination_bucket"), key),
                self.head_result(self.stack.output("failed_bucket"), key),
            )
            if result is not None and (etag is None or result.source_etag == etag)
        ]
        return max(found, key=lambda r: r.last_modified, default=None)

    def wait_for_results(
        self,
        pending: Mapping[str, str],
        timeout: float = 60.0,
        interval: float = 0.5,
        on_result: Callable[[str, ImageResult], None] | None = None,
    ) -> dict[str, ImageResult | None]:
        """Poll until each ``key -> source ETag`` in ``pending`` has its result, or ``timeout`` seconds passed.

        ``on_result`` is called as each result appears. Returns every key with its result, ``None`` for the keys
        that had none in time.
        """
        waiting = dict(pending)
        found: dict[str, ImageResult | None] = dict.fromkeys(pending)
        deadline = time.monotonic() + timeout
        while waiting:
            for key, etag in list(waiting.items()):
                result = self.find_result(key, etag)
                if result is not None:
                    found[key] = result
                    del waiting[key]
                    if on_result is not None:
                        on_result(key, result)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(interval)
        return found

    def list_objects(self, bucket: str, limit: int | None = None) -> list[StoredObject]:
        """List ``bucket`` newest first (``limit`` keeps only the newest entries)."""
        paginator = self.client("s3").get_paginator("list_objects_v2")
        found = [
            StoredObject(
                key=item["Key"],
                size=int(item.get("Size", 0)),
                etag=unquote_etag(item.get("ETag")) or "",
                last_modified=item["LastModified"],
            )
            for page in paginator.paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        ]
        found.sort(key=lambda o: o.last_modified, reverse=True)
        return found[:limit] if limit else found

    def list_results(self, limit: int = 500, statuses: Iterable[str] | None = None) -> list[ImageResult]:
        """Return the results in the destination and failed buckets, newest first (at most ``limit`` of each).

        Reads each object's metadata with ``HeadObject`` (a few at a time).
        """
        wanted = set(statuses or STATUSES)
        buckets = []
        if wanted & {Status.COMPRESSED, Status.KEPT_ORIGINAL}:
            buckets.append(self.stack.output("destination_bucket"))
        if Status.FAILED in wanted:
            buckets.append(self.stack.output("failed_bucket"))
        jobs = [(bucket, obj.key) for bucket in buckets for obj in self.list_objects(bucket, limit)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = [r for r in pool.map(lambda job: self.head_result(*job), jobs) if r is not None]
        results = [r for r in results if r.status in wanted]
        results.sort(key=lambda r: r.last_modified, reverse=True)
        return results

    def failed_results(self, limit: int = 500) -> list[ImageResult]:
        """Return the failed copies, newest first, each with its reason."""
        return self.list_results(limit=limit, statuses=[Status.FAILED.value])

    def read_object(self, bucket: str, key: str) -> bytes:
        """Return the bytes of ``bucket``/``key``."""
        return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def retry_failed(self, key: str) -> str:
        """Resubmit a failed object: server-side copy of the failed bucket's copy back to the source key.

        The handler skips a source object whose ETag and settings fingerprint already have an outcome in the
        destination or failed bucket (``source-etag`` + ``settings`` metadata), and a copy of identical bytes has the
        same ETag, so a plain copy back would be skipped. Before resubmitting, the failed copy's metadata is therefore
        rewritten in place (server-side, bytes and reason kept): ``source-etag`` becomes ``retried-source-etag`` and
        ``retry-requested`` records the time. The handler then processes the object again and, if it fails again,
        writes a fresh failed copy. Nothing is deleted here. Returns the ETag (unquoted) of the new source object.

        Raises
        ------
        DashboardError
            When there is no failed copy under ``key``.
        """
        s3 = self.client("s3")
        failed_bucket = self.stack.output("failed_bucket")
        try:
            head = s3.head_object(Bucket=failed_bucket, Key=key)
        except bx.ClientError as exc:
            if _is_not_found(exc):
                raise DashboardError(f"'{key}' is no longer in the failed bucket; refresh the list.") from exc
            raise
        content_type = head.get("ContentType") or "image/jpeg"
        meta = dict(head.get("Metadata") or {})
        if MetadataKey.SOURCE_ETAG in meta:
            meta[MetadataKey.RETRIED_SOURCE_ETAG.value] = meta.pop(MetadataKey.SOURCE_ETAG)
        meta[MetadataKey.RETRY_REQUESTED.value] = datetime.now(UTC).isoformat(timespec="seconds")
        s3.copy_object(
            Bucket=failed_bucket,
            Key=key,
            CopySource={"Bucket": failed_bucket, "Key": key},
            MetadataDirective="REPLACE",
            ContentType=content_type,
            Metadata=meta,
        )
        copied = s3.copy_object(
            Bucket=self.stack.output("source_bucket"),
            Key=key,
            CopySource={"Bucket": failed_bucket, "Key": key},
            MetadataDirective="REPLACE",
            ContentType=content_type,
            Metadata={},
        )
        return unquote_etag(copied.get("CopyObjectResult", {}).get("ETag")) or ""

    def forget_failed_copy(self, key: str) -> bool:
        """Delete the failed copy of ``key`` if it is a stale one left by :meth:`retry_failed` after a success.

        Only a copy whose metadata says ``retry-requested`` and that carries no current ``source-etag`` is deleted;
        returns whether something was deleted.
        """
        s3 = self.client("s3")
        failed_bucket = self.stack.output("failed_bucket")
        try:
            meta = s3.head_object(Bucket=failed_bucket, Key=key).get("Metadata") or {}
        except bx.ClientError as exc:
            if _is_not_found(exc):
                return False
            raise
        if MetadataKey.RETRY_REQUESTED not in meta or MetadataKey.SOURCE_ETAG in meta:
            return False
        s3.delete_object(Bucket=failed_bucket, Key=key)
        return True


# --------------------------------------------------------------------------------------------------------------------
# Errors in words
# --------------------------------------------------------------------------------------------------------------------


def explain(exc: BaseException, stack: Stack | None = None) -> str:
    """Turn an exception from boto3 or this module into one sentence that says what to do next."""
    where = f"the {stack.label} at {stack.endpoint}" if stack and stack.endpoint else "AWS"
    if isinstance(exc, DashboardError):
        return str(exc)
    if isinstance(exc, bx.ProfileNotFound):
        return f"{exc}. Set AWS_PROFILE to a profile from `aws configure list-profiles`."
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return "No AWS credentials found. Set AWS_PROFILE (or run `aws configure` / `aws sso login`) and reload."
    if isinstance(exc, (bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError, bx.TokenRetrievalError, bx.SSOError)):
        return f"Your AWS SSO session is not valid ({exc}). Run `aws sso login` and reload."
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ConnectTimeoutError)):
        hint = "Start it with `make local-up`" if stack and stack.is_local else "Check your network and region"
        return f"Cannot reach {where} ({exc}). {hint}, then reload."
    if isinstance(exc, bx.ReadTimeoutError):
        return f"{where} did not answer in time ({exc}). Try again; if it persists, check the service."
    if isinstance(exc, bx.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}:
            return f"AWS rejected the credentials ({code}). Refresh them (e.g. `aws sso login`) and reload."
        if code in {"AccessDenied", "AccessDeniedException", "AuthorizationError"}:
            return f"Access denied ({message}). Use a profile allowed to read the stack's resources."
        if code == "NoSuchKey":
            return f"The object no longer exists ({message}); it may have been deleted or replaced. Refresh the page."
        if code in {"NoSuchBucket", "ResourceNotFoundException", "NotFound", "404", "NotFoundException"}:
            return (
                f"A resource of the stack is missing in {where} ({code}: {message}). "
                "Re-apply the stack (`make local-up` or `make deploy-aws`)."
            )
        return f"{where} answered with an error: {code}: {message}"
    if isinstance(exc, bx.BotoCoreError):
        return f"Talking to {where} failed: {exc}"
    return f"Unexpected error: {type(exc).__name__}: {exc}"


def _is_not_found(exc: bx.ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}
