"""Every boto3 call of the function (S3 and SNS), behind small functions that speak the project's words.

Clients are created lazily, once per container, with the region from ``AWS_REGION``/``AWS_DEFAULT_REGION``.
There is no endpoint code: boto3 reads ``AWS_ENDPOINT_URL`` itself, which is how the local targets reach the code.
Every AWS error leaves this module as :class:`AwsError`, so callers never import botocore; it says whether the error
is transient (throttling, 5xx, timeouts, connection errors: retrying may clear it) and, for a write, whether the write
may nevertheless have happened (``ambiguous``).

Every call is bounded: connect timeout :data:`CONNECT_TIMEOUT_S`, read timeout :data:`READ_TIMEOUT_S` (per socket
read, so a stalled call cannot eat the function's timeout), and botocore's ``standard`` retry mode with
:data:`MAX_ATTEMPTS` attempts (exponential backoff with jitter) for throttling, 5xx and connection errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from image_compressor.notification import ascii_safe, truncate

#: S3 limits user-defined metadata to 2 KB: the UTF-8 bytes of every key and value added up.
MAX_METADATA_BYTES = 2048
#: The metadata value that is shortened when the whole set would not fit.
_SHRINKABLE = "reason"

#: Seconds to establish a connection before the attempt counts as failed (then retried).
CONNECT_TIMEOUT_S = 3
#: Seconds one socket read may wait: a stalled call fails after this instead of running into the function timeout.
READ_TIMEOUT_S = 15
#: Attempts per call in botocore's ``standard`` retry mode (the first one included), with backoff and jitter.
MAX_ATTEMPTS = 3
#: The client configuration of every call.
CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_S,
    read_timeout=READ_TIMEOUT_S,
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
)

#: Error codes that mean "try again later" (throttling).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
        "KMSThrottlingException",
    }
)
#: Error codes of a server-side or timing fault (besides any HTTP 5xx): transient, and a write may have happened.
SERVER_FAULT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSInternalException",
        "OperationAborted",
    }
)

_clients: dict[str, Any] = {}


class AwsError(Exception):
    """An S3 or SNS call failed.

    Attributes
    ----------
    operation : str
        The API operation, e.g. ``PutObject``.
    target : str
        What it was called on, e.g. ``s3://bucket/key`` or a topic ARN.
    code : str
        The AWS error code (``AccessDenied``, ``NoSuchBucket``, ``404``, ...) or the botocore error class name.
    transient : bool
        Throttling, a 5xx, a timeout or a connection error (after botocore's own retries): the same call may succeed
        later, so the event should be retried. False for what retrying cannot fix (access denied, no such bucket or
        topic, invalid parameters): a permanent misconfiguration.
    ambiguous : bool
        Transient, and the request may have reached the service and taken effect (a read timeout, a dropped
        connection, a 5xx): after a write the caller must look before deciding. False for throttling and for a
        connection that was never made.
    """

    def __init__(
        self, operation: str, target: str, code: str, detail: str, *, transient: bool = False, ambiguous: bool = False
    ) -> None:
        super().__init__(f"{operation} on {target} failed: {code}: {detail}")
        self.operation = operation
        self.target = target
        self.code = code
        self.transient = transient
        self.ambiguous = ambiguous

    @property
    def precondition_failed(self) -> bool:
        """True when a conditional request (``If-Match``/``If-None-Match``) found the object changed."""
        return self.code in ("PreconditionFailed", "412", "ConditionalRequestConflict")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What HeadObject/GetObject told about an object.

    Attributes
    ----------
    size : int
        Content length in bytes.
    etag : str
        ETag without the surrounding quotes.
    content_type : str | None
        The object's Content-Type.
    metadata : dict[str, str]
        User metadata (keys lower-case, without ``x-amz-meta-``).
    last_modified : int | None
        LastModified as whole seconds since the epoch (S3 reports seconds), when S3 said.
    version_id : str | None
        The version id on a versioned bucket (``null`` or ``None`` otherwise).
    """

    size: int
    etag: str
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    last_modified: int | None = None
    version_id: str | None = None


def client(service: str) -> Any:
    """Return the boto3 client for ``service`` (bounded timeouts and retries: :data:`CLIENT_CONFIG`).

    Created on first use and reused for the container's lifetime.
    """
    existing = _clients.get(service)
    if existing is not None:
        return existing
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    created = boto3.client(service, region_name=region, config=CLIENT_CONFIG)
    _clients[service] = created
    return created


def reset_clients() -> None:
    """Forget the cached clients so the next call creates new ones (tests; a changed region or credentials)."""
    _clients.clear()


def head_object(bucket: str, key: str) -> ObjectInfo | None:
    """Return size, ETag, content type and user metadata of ``s3://bucket/key``, or ``None`` if it does not exist.

    Raises
    ------
    AwsError
        For any other failure (``403`` included: without ``s3:ListBucket`` S3 answers 403 for a missing key too).
    """
    response = _unless_missing("HeadObject", client("s3").head_object, bucket, key)
    return None if response is None else _info(response)


def _unless_missing(
    operation: str, call: Callable[..., dict[str, Any]], bucket: str, key: str
) -> dict[str, Any] | None:
    """Return ``call(Bucket=bucket, Key=key)``'s response, ``None`` on a 404; raise :class:`AwsError` otherwise."""
    try:
        return call(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _http_status(exc) == 404:
            return None
        raise _wrap(operation, f"s3://{bucket}/{key}", exc) from exc
    except BotoCoreError as exc:
        raise _wrap(operation, f"s3://{bucket}/{key}", exc) from exc


@dataclass(slots=True)
class OpenedObject:
    """A GetObject answered: what S3 said about the object, with the body not read yet.

    Reading the head of the GET instead of a HeadObject first saves a round trip; the body is read (:meth:`read`)
    only once the caller has decided it needs it, and :meth:`close` drops it unread otherwise.
    """

    bucket: str
    key: str
    info: ObjectInfo
    body: Any

    def read(self) -> bytes:
        """Read the whole body into memory.

        Raises
        ------
        AwsError
            When the transfer fails (a dropped connection, a read timeout: transient).
        """
        try:
            return self.body.read()
        except (ClientError, BotoCoreError) as exc:
            raise _wrap("GetObject", f"s3://{self.bucket}/{self.key}", exc) from exc

    def close(self) -> None:
        """Drop the body, read or not (its connection is closed when unread)."""
        self.body.close()


def open_object(bucket: str, key: str) -> OpenedObject | None:
    """GetObject ``s3://bucket/key``; return what S3 said and the unread body, or ``None`` if it does not exist.

    Raises
    ------
    AwsError
        For any other failure (``403`` included: without ``s3:ListBucket`` S3 answers 403 for a missing key too).
    """
    response = _unless_missing("GetObject", client("s3").get_object, bucket, key)
    return None if response is None else OpenedObject(bucket, key, _info(response), response["Body"])


def put_object(
    bucket: str,
    key: str,
    data: bytes,
    metadata: dict[str, str],
    content_type: str = "image/jpeg",
    *,
    if_match: str | None = None,
    if_absent: bool = False,
) -> str:
    """Write ``data`` to ``s3://bucket/key`` with user ``metadata`` made to fit S3's rules; return the new ETag.

    ``if_match`` makes the write conditional on the current object having that ETag (``If-Match``), ``if_absent`` on
    there being no object (``If-None-Match: *``): S3 refuses the write with ``PreconditionFailed`` otherwise, so two
    writers cannot overwrite each other unseen.

    Raises
    ------
    AwsError
        When the write fails (missing bucket, access denied, precondition failed, ...).
    """
    conditions: dict[str, str] = {}
    if if_match:
        conditions["IfMatch"] = f'"{if_match}"'
    elif if_absent:
        conditions["IfNoneMatch"] = "*"
    try:
        response = client("s3").put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=fit_metadata(metadata), **conditions
        )
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("PutObject", f"s3://{bucket}/{key}", exc) from exc
    return str(response.get("ETag", "")).strip('"')


def copy_object(
    source_bucket: str,
    key: str,
    bucket: str,
    metadata: dict[str, str],
    content_type: str | None = None,
    *,
    source_etag: str | None = None,
) -> str:
    """Copy ``s3://source_bucket/key`` server-side to ``s3://bucket/key``, replacing its user metadata and tags.

    Nothing is downloaded: this is one CopyObject call with ``MetadataDirective=REPLACE`` (objects up to 5 GB) and
    ``TaggingDirective=REPLACE`` with no tags (a copy starts without the source's tags, e.g. a ``notified`` marker).
    ``content_type`` keeps the original's Content-Type, which REPLACE would otherwise reset. ``source_etag`` makes the
    copy conditional on the source still having that ETag (``x-amz-copy-source-if-match``). Returns the copy's ETag.

    Raises
    ------
    AwsError
        When the copy fails (``PreconditionFailed`` when the source changed).
    """
    extra = {"ContentType": content_type} if content_type else {}
    if source_etag:
        extra["CopySourceIfMatch"] = f'"{source_etag}"'
    try:
        response = client("s3").copy_object(
            CopySource={"Bucket": source_bucket, "Key": key},
            Bucket=bucket,
            Key=key,
            MetadataDirective="REPLACE",
            Metadata=fit_metadata(metadata),
            TaggingDirective="REPLACE",
            Tagging="",
            **extra,
        )
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("CopyObject", f"s3://{source_bucket}/{key} -> s3://{bucket}/{key}", exc) from exc
    return str(response.get("CopyObjectResult", {}).get("ETag", "")).strip('"')


def delete_object(bucket: str, key: str, *, if_match: str | None = None) -> bool:
    """Delete ``s3://bucket/key`` if it still has ETag ``if_match`` (any object when ``None``).

    Returns False when the object is already gone or was replaced meanwhile (the condition failed): either way the
    object the caller meant to remove is not there any more.

    Raises
    ------
    AwsError
        For any other failure.
    """
    conditions = {"IfMatch": f'"{if_match}"'} if if_match else {}
    try:
        client("s3").delete_object(Bucket=bucket, Key=key, **conditions)
    except ClientError as exc:
        wrapped = _wrap("DeleteObject", f"s3://{bucket}/{key}", exc)
        if _http_status(exc) == 404 or wrapped.precondition_failed or wrapped.code in ("NoSuchKey", "404"):
            return False
        raise wrapped from exc
    except BotoCoreError as exc:
        raise _wrap("DeleteObject", f"s3://{bucket}/{key}", exc) from exc
    return True


def get_tags(bucket: str, key: str) -> dict[str, str]:
    """Return the object tags of ``s3://bucket/key`` (empty when it has none).

    Raises
    ------
    AwsError
        When they cannot be read.
    """
    try:
        response = client("s3").get_object_tagging(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("GetObjectTagging", f"s3://{bucket}/{key}", exc) from exc
    return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}


def put_tags(bucket: str, key: str, tags: dict[str, str]) -> None:
    """Replace the object tags of ``s3://bucket/key`` with ``tags`` (the object, its ETag and metadata stay).

    Raises
    ------
    AwsError
        When they cannot be written.
    """
    tag_set = [{"Key": name, "Value": value} for name, value in tags.items()]
    try:
        client("s3").put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tag_set})
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("PutObjectTagging", f"s3://{bucket}/{key}", exc) from exc


def publish(topic_arn: str, subject: str, message: str, attributes: dict[str, str]) -> str:
    """Publish ``message`` with ``subject`` and String message ``attributes`` to the SNS topic; return the MessageId.

    Raises
    ------
    AwsError
        When SNS refuses or cannot be reached (bad ARN, deleted topic, no permission, ...).
    """
    message_attributes = {
        name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
    }
    try:
        response = client("sns").publish(
            TopicArn=topic_arn, Subject=subject, Message=message, MessageAttributes=message_attributes
        )
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("Publish", topic_arn, exc) from exc
    return str(response["MessageId"])


def fit_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Return ``metadata`` as S3 accepts it: ASCII one-line values, within the 2 KB user-metadata limit.

    Values go through :func:`~image_compressor.notification.ascii_safe`; when the whole set is too large the
    ``reason`` value is shortened (ending in ``...``) so that every other entry is kept intact.
    """
    fitted = {key.lower(): ascii_safe(str(value)) for key, value in metadata.items()}
    others = sum(len(k) + len(v) for k, v in fitted.items() if k != _SHRINKABLE)
    if _SHRINKABLE in fitted:
        room = MAX_METADATA_BYTES - others - len(_SHRINKABLE)
        fitted[_SHRINKABLE] = truncate(fitted[_SHRINKABLE], max(room, 0))
    return fitted


def _info(response: dict[str, Any]) -> ObjectInfo:
    modified = response.get("LastModified")
    version = response.get("VersionId")
    return ObjectInfo(
        size=int(response.get("ContentLength", 0)),
        etag=str(response.get("ETag", "")).strip('"'),
        content_type=response.get("ContentType"),
        metadata={k.lower(): v for k, v in (response.get("Metadata") or {}).items()},
        last_modified=int(modified.timestamp()) if modified is not None else None,
        version_id=str(version) if version and version != "null" else None,
    )


def _http_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def classify(exc: Exception) -> tuple[bool, bool]:
    """Return ``(transient, ambiguous)`` for a botocore exception (see :class:`AwsError`).

    Transient: a throttling code, a server-fault code, HTTP 429 or 5xx, or any botocore connection or timeout
    error. Ambiguous: transient and not throttling, and not a connection that was never established.
    """
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or "")
        status = _http_status(exc) or 0
        if code in THROTTLING_CODES or status == 429:
            return True, False
        if code in SERVER_FAULT_CODES or status >= 500:
            return True, True
        return False, False
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return True, False  # the request never reached the service
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):  # read timeouts, dropped connections, ...
        return True, True
    return False, False


def _wrap(operation: str, target: str, exc: Exception) -> AwsError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or _http_status(exc) or "Unknown")
        detail = str(error.get("Message") or exc)
    else:
        code, detail = type(exc).__name__, str(exc)
    transient, ambiguous = classify(exc)
    return AwsError(operation, target, code, detail, transient=transient, ambiguous=ambiguous)
