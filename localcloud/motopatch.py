"""The seam between moto and the local Lambda executor, written for moto 5.2.5 exactly.

moto runs Lambda code only in Docker. Its Lambda function object (``moto.awslambda.models.LambdaFunction``) has one
entry point for every invocation, ``invoke(body, request_headers, response_headers)``: the Invoke API, InvokeAsync,
SQS event source mappings and SNS subscriptions call it. S3 bucket notifications call it through
``moto.s3.notifications._invoke_awslambda``, synchronously inside the upload request.

:func:`install` replaces both:

- ``LambdaFunction.invoke`` runs the function in the :class:`~localcloud.executor.LocalExecutor` (invocation type
  ``RequestResponse``), hands it to the :class:`~localcloud.asyncinvoke.AsyncInvoker` (``Event``: retries and
  destinations) or does nothing (``DryRun``). Both honour the function's reserved concurrency (moto stores
  ``PutFunctionConcurrency`` but enforces nothing; :mod:`localcloud.concurrency`): a synchronous invocation over it
  is answered :class:`TooManyRequestsException` (429), an asynchronous one waits in the queue.
- ``_invoke_awslambda`` hands the S3 event to the async invoker, so the upload returns at once, as on AWS.
- ``LambdaFunction._set_function_code`` (CreateFunction, UpdateFunctionCode) accepts LocalStack's hot-reload code,
  ``{"S3Bucket": "hot-reload", "S3Key": "<absolute directory>"}``, without fetching anything from S3 (moto would
  look for the bucket and refuse); a key that is not an existing directory is refused with a clear error. Such a
  function runs straight from that directory (:mod:`localcloud.hotreload`). Any other code goes to moto as before.

One moto bug is fixed on the way, because the stack cannot work without it: moto evaluates a bucket policy for
object requests without any request context, and treats every statement with a ``Condition`` as an explicit deny.
The stack's buckets carry the usual ``DenyInsecureTransport`` statement (``aws:SecureTransport = false``), so every
upload would be refused. ``FakeBucket.get_permission`` is replaced by one that leaves conditional statements out
(IAM's rule when a condition key is absent from the request: the statement does not apply); unconditional
statements are enforced as moto does. LocalStack does not enforce bucket policies at all.

A second one breaks ``terraform destroy``: moto's ``ListObjectVersions`` ignores ``encoding-type=url``, while the AWS
provider URL-decodes the keys it gets back before deleting them, so a key with ``+`` (or ``%``) is never deleted
and emptying a ``force_destroy`` bucket loops for ever. :func:`list_object_versions` honours the parameter.

Other moto versions may move these seams; :func:`check_moto_version` refuses to start on them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

import moto
from moto import settings as moto_settings
from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import InvalidParameterValueException, LambdaClientError
from moto.awslambda.utils import make_function_arn
from moto.logs.models import logs_backends
from moto.s3 import models as s3_models
from moto.s3 import notifications as s3_notifications
from moto.s3 import responses as s3_responses
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from localcloud import hotreload
from localcloud.asyncinvoke import DEFAULT_RETRY_DELAYS, AsyncInvoker, EventInvokeSettings, runner_failure
from localcloud.concurrency import RESERVED_LIMIT_REASON, THROTTLE_MESSAGE, ReservedConcurrency
from localcloud.executor import DEFAULT_CONCURRENCY, LocalExecutor
from localcloud.iamenforce import Enforcer
from localcloud.invocation import FunctionRef, FunctionSpec, spec_environment

log = logging.getLogger(__name__)

SUPPORTED_MOTO_VERSION = "5.2.5"


class UnsupportedMotoVersion(RuntimeError):
    """The installed moto is not the version the executor seam was written for."""


def check_moto_version(version: str | None = None) -> None:
    """Raise :class:`UnsupportedMotoVersion` unless ``version`` (default: the installed moto) is 5.2.5."""
    found = version if version is not None else moto.__version__
    if found != SUPPORTED_MOTO_VERSION:
        raise UnsupportedMotoVersion(
            f"the embedded local cloud patches moto {SUPPORTED_MOTO_VERSION} to run Lambda functions, "
            f"but moto {found} is installed; install the pinned version with "
            f"`.venv/bin/pip install 'moto[server]=={SUPPORTED_MOTO_VERSION}'` (or run `make install`)"
        )


class TooManyRequestsException(LambdaClientError):
    """Lambda's answer to an invocation over the function's reserved concurrency: HTTP 429 with a ``Reason``."""

    code = 429

    def __init__(self, reason: str = RESERVED_LIMIT_REASON) -> None:
        super().__init__("TooManyRequestsException", THROTTLE_MESSAGE)
        self.description = json.dumps(
            {"__type": self.error_type, "message": self.message, "Reason": reason, "Type": "User"}
        )


def moto_function(account_id: str, region: str, name: str) -> lambda_models.LambdaFunction | None:
    """Return moto's function ``name`` (``$LATEST``), or ``None`` when it is gone (deleted meanwhile)."""
    try:
        return lambda_models.lambda_backends[account_id][region].get_function(name)
    except Exception:
        return None


def reserved_concurrency(arn: str) -> int | None:
    """Return the reserved concurrency of the moto function with unqualified ``arn`` (``None``: unreserved, or gone)."""
    parts = arn.split(":")
    # A function deleted meanwhile fails its attempt on its own (no spec): it is not throttled.
    value = getattr(moto_function(parts[4], parts[3], parts[6]), "reserved_concurrency", None)
    return None if value is None else int(value)


class MotoLogSink:
    """Writes function logs into moto's CloudWatch Logs backend (group and stream are created when missing).

    With an ``enforcer`` the lines are written as Lambda writes them, with the function's execution role: a role
    that may not ``logs:CreateLogGroup`` (when the group is missing), ``logs:CreateLogStream`` (a new stream) or
    ``logs:PutLogEvents`` loses them, as on AWS, and the denial is recorded and logged by the server.
    """

    def __init__(self, enforcer: Enforcer | None = None) -> None:
        self._lock = threading.Lock()
        self.enforcer = enforcer

    def put(self, account_id: str, region: str, group: str, stream: str, events: list[tuple[int, str]]) -> None:
        """Append ``events`` to ``group``/``stream`` in moto's logs backend of ``account_id``/``region``."""
        if not events:
            return
        backend = logs_backends[account_id][region]
        with self._lock:
            new_group = group not in backend.groups
            new_stream = new_group or stream not in backend.groups[group].streams
            if not self._role_may_write(account_id, region, group, stream, new_group, new_stream):
                return
            backend.ensure_log_group(group)
            if new_stream:
                backend.create_log_stream(group, stream)
            backend.put_log_events(group, stream, [{"timestamp": ts, "message": msg} for ts, msg in events])

    def _role_may_write(
        self, account_id: str, region: str, group: str, stream: str, new_group: bool, new_stream: bool
    ) -> bool:
        enforcer = self.enforcer
        if enforcer is None or not enforcer.mode.enforce or not group.startswith("/aws/lambda/"):
            return True
        name = group.removeprefix("/aws/lambda/")
        fn = moto_function(account_id, region, name)
        if fn is None:  # the function is gone: nothing to write as
            return True
        role = fn.role
        group_arn = f"arn:aws:logs:{region}:{account_id}:log-group:{group}"
        calls = [("logs:CreateLogGroup", f"{group_arn}:*")] if new_group else []
        calls += [("logs:CreateLogStream", f"{group_arn}:log-stream:{stream}")] if new_stream else []
        calls.append(("logs:PutLogEvents", f"{group_arn}:log-stream:{stream}"))
        return all(enforcer.role_allows(role, name, action, arn, account_id, region) for action, arn in calls)


class MotoDestinations:
    """Delivers Lambda destination records to SQS queues, SNS topics or other functions inside moto."""

    def __init__(self, patch: Patch) -> None:
        self.patch = patch

    def send(self, destination_arn: str, record: dict[str, Any]) -> None:
        """Deliver ``record`` (a Lambda destination record) to ``destination_arn``.

        Raises
        ------
        ValueError
            For destination services other than SQS, SNS and Lambda.
        """
        parts = destination_arn.split(":")
        service, region, account_id, resource = parts[2], parts[3], parts[4], parts[5]
        self._check_role(record, service, destination_arn, account_id, region)
        body = json.dumps(record)
        if service == "sqs":
            sqs_backends[account_id][region].send_message(resource, body)
        elif service == "sns":
            sns_backends[account_id][region].publish(body, arn=destination_arn)
        elif service == "lambda":
            name = parts[6]
            backend = lambda_models.lambda_backends[account_id][region]
            fn = backend.get_function(name, parts[7] if len(parts) > 7 else None)
            self.patch.submit_async(fn, record)
        else:
            raise ValueError(f"destination {destination_arn} is not supported locally (use SQS, SNS or Lambda)")

    def _check_role(self, record: dict[str, Any], service: str, destination: str, account_id: str, region: str) -> None:
        """Lambda sends a destination record as the function's execution role: refuse what the role may not do.

        Raises
        ------
        PermissionError
            With AWS's message; the record is not delivered (the server logs it, as AWS counts a failed delivery).
        """
        enforcer = self.patch.enforcer
        if enforcer is None or not enforcer.mode.enforce:
            return
        function_arn = str((record.get("requestContext") or {}).get("functionArn") or "")
        parts = function_arn.split(":")
        if len(parts) < 7:
            return
        fn = moto_function(parts[4], parts[3], parts[6])
        if fn is None:  # the function is gone meanwhile: nothing to send as
            return
        role = fn.role
        action = {"sqs": "sqs:SendMessage", "sns": "sns:Publish", "lambda": "lambda:InvokeFunction"}.get(service)
        if action and not enforcer.role_allows(role, parts[6], action, destination, account_id, region):
            raise PermissionError(
                f"the destination record of {parts[6]} was not delivered to {destination}: its execution role "
                f"may not {action} there (see the denial in GET /_localcloud/iam)"
            )


@dataclass
class Patch:
    """An installed patch; :meth:`uninstall` restores moto's original functions."""

    executor: LocalExecutor
    invoker: AsyncInvoker
    concurrency: ReservedConcurrency | None = None
    enforcer: Enforcer | None = None
    _original_invoke: Any = None
    _original_s3_invoke: Any = None
    _original_get_permission: Any = None
    _original_list_versions: Any = None
    _original_set_code: Any = None

    def spec(self, fn: lambda_models.LambdaFunction) -> FunctionSpec:
        """Build the executor's view of moto function ``fn``, extracting its code and layers into the cache.

        A hot-reload function's code is its directory, with the signature of its files as they are now.
        """
        signature = ""
        if hotreload.is_hot_reload(fn.code):
            code_dir = hotreload.code_dir(fn.code["S3Key"])
            signature = hotreload.tree_signature(code_dir)
        else:
            code_sha = getattr(fn, "code_digest", "") or hashlib.sha256(fn.code_bytes).hexdigest()
            code_dir = self.executor.cache.extract("code", code_sha, lambda: fn.code_bytes)
        backend = lambda_models.lambda_backends[fn.account_id][fn.region]
        layer_dirs = []
        for layer in fn.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            if version is None:
                raise ValueError(f"layer {layer['Arn']} of function {fn.function_name} no longer exists")
            sha = version.code_digest or hashlib.sha256(version.code_bytes).hexdigest()
            layer_dirs.append(self.executor.cache.extract("layers", sha, lambda v=version: v.code_bytes))
        return FunctionSpec(
            name=fn.function_name,
            arn=make_function_arn(fn.region, fn.account_id, fn.function_name),
            version=str(fn.version),
            handler=fn.handler or "",
            runtime=fn.run_time,
            timeout=float(fn.timeout),
            memory_size=int(fn.memory_size),
            environment=spec_environment(fn.environment_vars),
            region=fn.region,
            account_id=fn.account_id,
            code_dir=code_dir,
            layer_dirs=tuple(layer_dirs),
            code_signature=signature,
            role=fn.role or "",
        )

    def function_spec(self, name: str, region: str) -> FunctionSpec:
        """Return the spec of function ``name``'s ``$LATEST`` in ``region`` (moto's default account).

        Raises
        ------
        LookupError
            When there is no such function (the stack is not applied yet, or another region).
        """
        from moto.core import DEFAULT_ACCOUNT_ID

        try:
            fn = lambda_models.lambda_backends[DEFAULT_ACCOUNT_ID][region].get_function(name)
        except Exception:
            raise LookupError(f"no function {name!r} in {region}: apply the stack first") from None
        return self.spec(fn)

    def settings(self, fn: lambda_models.LambdaFunction) -> EventInvokeSettings:
        """Return the function's event invoke config (the most recent one put), or Lambda's defaults."""
        if not fn.event_invoke_config:
            return EventInvokeSettings()
        config = fn.event_invoke_config[-1].config
        destinations = config.get("DestinationConfig") or {}
        return EventInvokeSettings(
            maximum_retry_attempts=int(config.get("MaximumRetryAttempts", 2)),
            maximum_event_age_s=int(config.get("MaximumEventAgeInSeconds", 21600)),
            on_success=(destinations.get("OnSuccess") or {}).get("Destination") or None,
            on_failure=(destinations.get("OnFailure") or {}).get("Destination") or None,
        )

    def ref(self, fn: lambda_models.LambdaFunction) -> FunctionRef:
        """Return a reference to moto function ``fn`` whose spec (:meth:`spec`) is built only when it is resolved."""
        arn = make_function_arn(fn.region, fn.account_id, fn.function_name)
        return FunctionRef(fn.function_name, arn, str(fn.version), lambda: self.spec(fn))

    def submit_async(self, fn: lambda_models.LambdaFunction, event: Any) -> str:
        """Queue an asynchronous invocation of ``fn`` with ``event``; return its request id.

        Only moto's own attributes are read here (the event invoke config); the code and layers are extracted when
        an attempt starts, so a zip that cannot be unpacked or a deleted layer is a failed attempt of a queued
        event (retried, then the on-failure destination), never an event lost on the way in.
        """
        return self.invoker.submit(self.ref(fn), event, self.settings(fn))

    def invoke(self, fn: lambda_models.LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        """Replacement for ``LambdaFunction.invoke``: run, queue or dry-run one invocation of ``fn``."""
        invocation_type = request_headers.get("x-amz-invocation-type") or request_headers.get(
            "X-Amz-Invocation-Type", "RequestResponse"
        )
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            raise InvalidParameterValueException(
                "Could not parse request body into json: the payload must be a JSON document"
            ) from None
        response_headers["x-amz-executed-version"] = str(fn.version)
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            self.submit_async(fn, event)
            return b""
        request_id = str(uuid.uuid4())
        arn = make_function_arn(fn.region, fn.account_id, fn.function_name)
        # Only the Invoke API is refused with 429: moto's own event sources (SNS subscriptions, SQS event source
        # mappings, streams) call in with empty headers and have nothing to retry a 429 with; they are not limited.
        counted = self.concurrency if request_headers else None
        if counted is not None and not counted.acquire(arn):
            raise TooManyRequestsException()
        try:
            invocation = self.executor.invoke(self.spec(fn), event, request_id=request_id)
        except Exception as exc:  # no spec (bad zip, deleted layer) or no worker: a failed invocation, as on Lambda
            log.exception("invocation %s of %s could not run", request_id, fn.function_name)
            invocation = runner_failure(request_id, exc)
        finally:
            if counted is not None:
                counted.release(arn)
        if invocation.function_error:
            response_headers["x-amz-function-error"] = invocation.function_error
        response_headers["x-amz-log-result"] = base64.b64encode(invocation.log_tail().encode()).decode()
        return invocation.payload

    def s3_invoke(self, account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        """Replacement for moto's ``_invoke_awslambda``: queue the S3 event for the function, asynchronously."""
        try:
            backend = lambda_models.lambda_backends[account_id][region_name]
            fn = backend.get_function(fn_arn)
            if not self._s3_may_invoke(fn, event_body, account_id):
                return  # AWS cannot deliver it either; the denial is recorded and logged
            self.submit_async(fn, event_body)
        except Exception:
            # As on AWS, an upload never fails because its notification could not be delivered.
            log.exception("could not deliver the S3 event to %s", fn_arn)

    def _s3_may_invoke(self, fn: lambda_models.LambdaFunction, event_body: Any, account_id: str) -> bool:
        """Decide S3's ``lambda:InvokeFunction`` on ``fn`` by the function's resource policy (bucket, account)."""
        if self.enforcer is None:
            return True
        try:
            bucket_arn = "arn:aws:s3:::" + event_body["Records"][0]["s3"]["bucket"]["name"]
        except (KeyError, IndexError, TypeError):
            bucket_arn = ""
        arn = make_function_arn(fn.region, fn.account_id, fn.function_name)
        return self.enforcer.service_allows("s3.amazonaws.com", "lambda:InvokeFunction", arn, bucket_arn, account_id)

    def uninstall(self) -> None:
        """Restore every moto function :func:`install` replaced."""
        if self._original_invoke is not None:
            lambda_models.LambdaFunction.invoke = self._original_invoke
            s3_notifications._invoke_awslambda = self._original_s3_invoke
            s3_models.FakeBucket.get_permission = self._original_get_permission
            s3_responses.S3Response.list_object_versions = self._original_list_versions
            lambda_models.LambdaFunction._set_function_code = self._original_set_code
            self._original_invoke = self._original_s3_invoke = None
            self._original_get_permission = self._original_list_versions = self._original_set_code = None


def install(
    executor: LocalExecutor,
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
    workers: int = DEFAULT_CONCURRENCY,
    enforcer: Enforcer | None = None,
) -> Patch:
    """Route moto's Lambda invocations to ``executor``; return the :class:`Patch` (call ``uninstall`` to undo).

    Also replaces moto's bucket-policy check with :func:`bucket_permission`, its ``ListObjectVersions`` with
    :func:`list_object_versions`, and lets functions take hot-reload code (:func:`set_function_code`).

    ``retry_delays`` are the waits (seconds) before the first, second, ... retry of a failed asynchronous
    invocation (AWS waits about one and then two minutes; locally seconds are enough). ``workers`` is the number
    of threads that run queued asynchronous invocations. Both kinds of invocation honour each function's reserved
    concurrency (:class:`~localcloud.concurrency.ReservedConcurrency`, ``patch.concurrency``).

    Raises
    ------
    UnsupportedMotoVersion
        When the installed moto is not 5.2.5.
    """
    check_moto_version()
    concurrency = ReservedConcurrency(reserved_concurrency)
    patch = Patch(executor=executor, invoker=None, concurrency=concurrency, enforcer=enforcer)  # type: ignore[arg-type]
    patch.invoker = AsyncInvoker(
        executor, MotoDestinations(patch), retry_delays=retry_delays, threads=workers, concurrency=concurrency
    )
    patch._original_invoke = lambda_models.LambdaFunction.invoke
    patch._original_s3_invoke = s3_notifications._invoke_awslambda

    def invoke(self: lambda_models.LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        return patch.invoke(self, body, request_headers, response_headers)

    patch._original_get_permission = s3_models.FakeBucket.get_permission
    patch._original_list_versions = s3_responses.S3Response.list_object_versions
    patch._original_set_code = original_set_code = lambda_models.LambdaFunction._set_function_code

    def set_code(self: lambda_models.LambdaFunction, updated_spec: dict[str, Any]) -> None:
        set_function_code(self, updated_spec, original_set_code)

    lambda_models.LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    s3_notifications._invoke_awslambda = patch.s3_invoke
    s3_models.FakeBucket.get_permission = bucket_permission  # type: ignore[method-assign]
    s3_responses.S3Response.list_object_versions = list_object_versions  # type: ignore[method-assign]
    lambda_models.LambdaFunction._set_function_code = set_code  # type: ignore[method-assign]
    return patch


def set_function_code(fn: lambda_models.LambdaFunction, updated_spec: dict[str, Any], original: Any) -> None:
    """Replacement for moto's ``LambdaFunction._set_function_code`` that understands hot-reload code.

    ``updated_spec`` is the function's own ``Code`` (CreateFunction) or an UpdateFunctionCode request. Hot-reload
    code (:func:`localcloud.hotreload.is_hot_reload`) is checked (the key must be an existing absolute directory) and
    recorded with no S3 lookup and no bytes; moto's ``CodeSha256`` becomes a digest of the path. Everything else is
    moto's own ``original``; a function that leaves hot reload forgets the magic bucket.

    Raises
    ------
    InvalidParameterValueException
        For a hot-reload key that is not an existing absolute directory (a 400 for the caller, as moto's own checks).
    """
    from_update = updated_spec is not fn.code
    if from_update and updated_spec.get("DryRun"):
        return
    if not hotreload.is_hot_reload(updated_spec):
        original(fn, updated_spec)
        if from_update and fn.code.get("S3Bucket") == hotreload.HOT_RELOAD_BUCKET:
            fn.code.pop("S3Bucket", None)  # moto keeps the old bucket when a zip replaces S3 code
        return
    try:
        directory = hotreload.code_dir(str(updated_spec.get("S3Key", "")))
    except ValueError as exc:
        raise InvalidParameterValueException(str(exc)) from None
    digest = hashlib.sha256(str(directory).encode())
    fn.code_bytes = b""
    fn.code_size = 0
    fn.code_sha_256 = base64.b64encode(digest.digest()).decode()
    fn.code_digest = digest.hexdigest()
    if from_update:
        fn.code.pop("ZipFile", None)
        fn.code["S3Bucket"] = hotreload.HOT_RELOAD_BUCKET
        fn.code["S3Key"] = updated_spec["S3Key"]


def list_object_versions(self: s3_responses.S3Response) -> Any:
    """Replacement for moto's ``S3Response.list_object_versions`` that honours ``encoding-type=url``.

    The same as moto 5.2.5's method, except that with ``encoding-type=url`` the keys, prefixes and markers in the
    answer are URL-encoded and ``EncodingType`` is set, as S3 does (see the module docstring).
    """
    from moto.core.responses import ActionResult

    encoding = self.querystring.get("encoding-type", [None])[0]

    def enc(value: str | None) -> str | None:
        return urllib.parse.quote(value, safe="/") if value and encoding == "url" else value

    delimiter = self.querystring.get("delimiter", [None])[0]
    key_marker = self.querystring.get("key-marker", [None])[0]
    max_keys = int(self.querystring.get("max-keys", [moto_settings.get_s3_default_max_keys()])[0])
    querystring = self._get_querystring(self.request, self.uri)
    prefix = querystring.get("prefix", [""])[0]
    version_id_marker = self.querystring.get("version-id-marker", [None])[0]
    bucket = self.backend.get_bucket(self.bucket_name)
    versions, common_prefixes, delete_markers, next_key_marker, next_version_id_marker = (
        self.backend.list_object_versions(
            self.bucket_name,
            delimiter=delimiter,
            key_marker=key_marker,
            max_keys=max_keys,
            prefix=prefix,
            version_id_marker=version_id_marker,
        )
    )
    owner = {"ID": "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a", "DisplayName": "webfile"}
    result: dict[str, Any] = {
        "Name": bucket.name,
        "Prefix": enc(prefix) if prefix is not None else None,
        "Delimiter": enc(delimiter),
        "KeyMarker": enc(key_marker) or "",
        "VersionIdMarker": version_id_marker or "",
        "MaxKeys": max_keys,
        "IsTruncated": next_key_marker is not None,
        "Versions": [
            {
                "Key": enc(key.name),
                "VersionId": key.version_id if key.version_id is not None else "null",
                "IsLatest": getattr(key, "is_latest", False),
                "LastModified": key.last_modified_ISO8601,
                "ETag": key.etag,
                "Size": key.size,
                "StorageClass": key.storage_class,
                "Owner": owner,
            }
            for key in versions
        ],
        "DeleteMarkers": [
            {
                "Key": enc(marker.name),
                "VersionId": marker.version_id,
                "IsLatest": getattr(marker, "is_latest", False),
                "LastModified": marker.last_modified_ISO8601,
                "Owner": owner,
            }
            for marker in delete_markers
        ],
    }
    if common_prefixes:
        result["CommonPrefixes"] = [{"Prefix": enc(p)} for p in common_prefixes]
    if next_key_marker is not None:
        result["NextKeyMarker"] = enc(next_key_marker)
        result["NextVersionIdMarker"] = next_version_id_marker
    if encoding:
        result["EncodingType"] = encoding
    self.data["Action"] = "ListObjectVersions"
    return self.serialized(ActionResult(result))


def bucket_permission(bucket: s3_models.FakeBucket, action: str, resource: str) -> Any:
    """Evaluate ``bucket``'s policy for ``action`` on ``resource`` without its conditional statements.

    Replacement for moto's ``FakeBucket.get_permission`` (see the module docstring): moto has no request context
    for conditions, so a statement with a ``Condition`` is treated as not applying instead of as a deny.
    Returns moto's ``PermissionResult``.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(bucket.policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [s for s in statements if not s.get("Condition")]
    if not document["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)
